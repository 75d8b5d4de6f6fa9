# run_step(<what> <command>...) for the consumer test scripts (cmake -P): runs the command,
# fails the test with <what>, the exit code and the output when it fails, and leaves its
# stdout+stderr in `step_output` (stdout only with STDOUT_ONLY set before the call).
function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${HD_TEST_NAME}: ${what} failed (${rc})\n${out}\n${err}")
  endif()
  if(STDOUT_ONLY)
    set(step_output "${out}" PARENT_SCOPE)
  else()
    set(step_output "${out}${err}" PARENT_SCOPE)
  endif()
endfunction()
