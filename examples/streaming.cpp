// Streaming a dataset larger than the disk (DESIGN §11): a job of several nodes, two
// ranks (processes) on each, reads a published cache over HTTP in the training order
// through one bounded stream cache per node, for two epochs, saves a checkpoint, and a
// new set of processes resumes from it exactly.
//
//   streaming publish WWW [--records N] [--dims D]
//       writes a dataset of N records (record i is float32[D] {31i, 31i+1, …}) and
//       publishes it as WWW/train.cache, ready to be served by any static server
//       with byte ranges and a strong ETag (nginx, an object store).
//   streaming job URL --limit BYTES [--dir D] [--nodes K] [--ranks-per-node R] [--seed S]
//       launches K×R rank processes (this program again, as a launcher would). Node k
//       is the directory D/node-k, the HARMONICS_CACHE_DIR of its ranks, where they
//       share the stream cache `train.stream`, never more than BYTES of disk. Each rank
//       reads two epochs, checks every record, and saves its StreamState halfway
//       through epoch 1 (a plain struct, written as it is). Then K×R new processes
//       restore those states in new producers and read to the end of epoch 1; the job
//       checks that they read exactly what the first run read after the checkpoint,
//       and prints what was fetched and the disk used against the limit.
//
// With a limit of a quarter of the dataset, each node (half the dataset with two nodes)
// holds half its share: epoch 1 fetches about the other half, not all of it, because
// the stream evicts the block needed furthest in the future. examples/streaming_test.sh
// serves the dataset with nginx on 127.0.0.1 and runs the job.
#include <harmonics/dataset.hpp>

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

/// The dataset written by `publish`: record i is float32[dims] {31i, 31i+1, …}.
class Synthetic : public harmonics::Producer {
  public:
    Synthetic(std::size_t n, std::size_t dims) : n_{n}, dims_{dims} {}
    harmonics::HTensor next() override {
        std::vector<std::byte> bytes(dims_ * sizeof(float));
        for (std::size_t j = 0; j < dims_; ++j) {
            float v = static_cast<float>(31 * cursor_ + j);
            std::memcpy(bytes.data() + j * sizeof v, &v, sizeof v);
        }
        cursor_ = (cursor_ + 1) % n_;
        return harmonics::HTensor(harmonics::HTensor::DType::Float32, {dims_}, std::move(bytes));
    }
    std::size_t size() const override { return n_; }

  private:
    std::size_t n_, dims_, cursor_{0};
};

/// The record index of `t`, after checking every element (a wrong or torn record fails).
std::size_t check_record(const harmonics::HTensor& t) {
    const std::size_t dims = t.data().size() / sizeof(float);
    std::vector<float> v(dims);
    std::memcpy(v.data(), t.data().data(), t.data().size());
    const std::size_t i = static_cast<std::size_t>(v[0]) / 31;
    for (std::size_t j = 0; j < dims; ++j)
        if (v[j] != static_cast<float>(31 * i + j))
            throw std::runtime_error("record " + std::to_string(i) + " is damaged at element " + std::to_string(j));
    return i;
}

struct Args {
    std::string mode, target;  // target: WWW for publish, URL otherwise
    std::size_t records = 4000, dims = 1024;
    std::size_t nodes = 2, ranks_per_node = 2, rank = 0;
    std::uint64_t limit = 0, seed = 2024;
    std::string dir = "job";
    bool resume = false;
};

Args parse(int argc, char** argv) {
    Args a;
    if (argc < 3) throw std::runtime_error("usage: streaming publish WWW | job URL --limit BYTES [options]");
    a.mode = argv[1];
    a.target = argv[2];
    for (int i = 3; i < argc; ++i) {
        std::string k = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(k + " needs a value");
            return argv[++i];
        };
        if (k == "--records") a.records = std::stoul(val());
        else if (k == "--dims") a.dims = std::stoul(val());
        else if (k == "--nodes") a.nodes = std::stoul(val());
        else if (k == "--ranks-per-node") a.ranks_per_node = std::stoul(val());
        else if (k == "--rank") a.rank = std::stoul(val());
        else if (k == "--limit") a.limit = std::stoull(val());
        else if (k == "--seed") a.seed = std::stoull(val());
        else if (k == "--dir") a.dir = val();
        else if (k == "--resume") a.resume = true;
        else throw std::runtime_error("unknown option " + k);
    }
    return a;
}

int publish(const Args& a) {
    {
        harmonics::DiskCacheProducer cache(std::make_shared<Synthetic>(a.records, a.dims), "train.cache");
        if (cache.size() != a.records) throw std::runtime_error("the dataset was not written whole");
    }
    harmonics::publish_cache("train.cache", a.target);  // the index at the head: ranges work
    std::printf("published %s/train.cache: %zu records of float32[%zu], %ju bytes\n", a.target.c_str(), a.records,
                a.dims, static_cast<std::uintmax_t>(fs::file_size(fs::path(a.target) / "train.cache")));
    return 0;
}

// --- One rank --------------------------------------------------------------------------

std::string rank_file(const Args& a, std::size_t rank, const std::string& what) {
    return a.dir + "/rank-" + std::to_string(rank) + "." + what;
}

harmonics::StreamingProducer open_stream(const Args& a) {
    harmonics::SamplerOptions order;
    order.seed = a.seed;
    order.rank = a.rank;
    order.world_size = a.nodes * a.ranks_per_node;
    harmonics::StreamOptions opts;
    opts.cache_limit = a.limit;  // this node's disk for the stream, every file counted
    opts.ranks_per_node = a.ranks_per_node;
    opts.cache_name = "train.stream";  // under this node's HARMONICS_CACHE_DIR
    return harmonics::StreamingProducer(a.target, order, opts);
}

/// Writes `bytes` to `path` through a temp file and a rename (a crash leaves the old one).
void write_atomically(const std::string& path, const void* bytes, std::size_t n) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
        if (!out.flush()) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp);
}

/// The first run: epochs 0 and 1, each record checked and logged; the state saved in the
/// middle of epoch 1.
int run_rank(const Args& a) {
    harmonics::StreamingProducer train = open_stream(a);
    std::ofstream report(rank_file(a, a.rank, "report"));
    report << "records=" << train.num_records() << "\nsize=" << train.size() << "\n";
    for (std::uint64_t epoch = 0; epoch < 2; ++epoch) {
        std::ofstream log(rank_file(a, a.rank, "epoch" + std::to_string(epoch)));
        const std::size_t steps = train.size();  // records per rank per epoch
        for (std::size_t step = 0; step < steps; ++step) {
            if (epoch == 1 && step == steps / 2) {
                harmonics::StreamState checkpoint = train.state();  // plain data, O(1)
                write_atomically(rank_file(a, a.rank, "state"), &checkpoint, sizeof checkpoint);
                report << "checkpoint_step=" << step << "\n";
            }
            log << check_record(train.next()) << "\n";
            // ... forward, backward, all-reduce, optimizer step ...
        }
        harmonics::StreamStats s = train.stats();
        report << "epoch" << epoch << "_bytes_fetched=" << s.bytes_fetched << "\nepoch" << epoch
               << "_blocks_fetched=" << s.blocks_fetched << "\n";
    }
    harmonics::StreamStats s = train.stats();
    report << "disk_high_water=" << s.disk_high_water << "\nwait_ms=" << static_cast<long>(s.wait_seconds * 1000)
           << "\n";
    return report.flush() ? 0 : 1;
}

/// The resume: a new producer restored from the saved state reads to the end of epoch 1;
/// every record must be the one the first run read at that step.
int resume_rank(const Args& a) {
    harmonics::StreamState checkpoint{};
    std::ifstream in(rank_file(a, a.rank, "state"), std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(&checkpoint), sizeof checkpoint))
        throw std::runtime_error("no checkpoint at " + rank_file(a, a.rank, "state"));
    harmonics::StreamingProducer train = open_stream(a);
    train.restore(checkpoint);  // O(1): nothing before the checkpoint is replayed
    std::ifstream first_run(rank_file(a, a.rank, "epoch1"));
    std::vector<std::size_t> expected;
    for (std::size_t i; first_run >> i;) expected.push_back(i);
    std::size_t step = checkpoint.step, compared = 0, differing = 0;
    while (train.epoch() == 1) {
        std::size_t got = check_record(train.next());
        if (step >= expected.size() || got != expected[step]) ++differing;
        ++step;
        ++compared;
    }
    std::ofstream report(rank_file(a, a.rank, "resumed"));
    report << "from_step=" << checkpoint.step << "\ncompared=" << compared << "\ndiffering=" << differing
           << "\nexpected=" << expected.size() - checkpoint.step << "\nbytes_fetched=" << train.stats().bytes_fetched
           << "\n";
    return report.flush() ? 0 : 1;
}

// --- The launcher ------------------------------------------------------------------------

std::map<std::string, std::uint64_t> read_report(const std::string& path) {
    std::map<std::string, std::uint64_t> r;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        auto eq = line.find('=');
        if (eq != std::string::npos) r[line.substr(0, eq)] = std::stoull(line.substr(eq + 1));
    }
    if (r.empty()) throw std::runtime_error("no report at " + path);
    return r;
}

/// Allocated bytes of a directory and the files in it, as `du` counts them.
std::uint64_t disk_usage(const fs::path& dir) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) return 0;
    std::uint64_t n = static_cast<std::uint64_t>(st.st_blocks) * 512;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (::lstat(it->path().c_str(), &st) == 0) n += static_cast<std::uint64_t>(st.st_blocks) * 512;
    return n;
}

/// Starts every rank (this program again, `rank` mode), node k's ranks with
/// HARMONICS_CACHE_DIR=D/node-k, and waits for them while watching each node's stream
/// cache from outside; returns the watcher's highest reading per node.
std::vector<std::uint64_t> run_ranks(const Args& a, bool resume) {
    const std::size_t world = a.nodes * a.ranks_per_node;
    std::vector<pid_t> pids;
    for (std::size_t r = 0; r < world; ++r) {
        const std::string node_dir = fs::absolute(a.dir + "/node-" + std::to_string(r / a.ranks_per_node)).string();
        fs::create_directories(node_dir);
        std::vector<std::string> env{"HARMONICS_CACHE_DIR=" + node_dir};
        for (char** e = environ; *e; ++e)
            if (std::strncmp(*e, "HARMONICS_CACHE_DIR=", 20) != 0) env.emplace_back(*e);
        std::vector<std::string> args{"streaming",
                                      "rank",
                                      a.target,
                                      "--rank",
                                      std::to_string(r),
                                      "--nodes",
                                      std::to_string(a.nodes),
                                      "--ranks-per-node",
                                      std::to_string(a.ranks_per_node),
                                      "--limit",
                                      std::to_string(a.limit),
                                      "--seed",
                                      std::to_string(a.seed),
                                      "--dir",
                                      a.dir};
        if (resume) args.emplace_back("--resume");
        std::vector<char*> argv, envp;
        for (auto& s : args) argv.push_back(s.data());
        for (auto& s : env) envp.push_back(s.data());
        argv.push_back(nullptr);
        envp.push_back(nullptr);
        pid_t pid = 0;
        int rc = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data());
        if (rc != 0) throw std::runtime_error(std::string("cannot start a rank: ") + std::strerror(rc));
        pids.push_back(pid);
    }
    std::vector<std::uint64_t> highest(a.nodes, 0);
    std::size_t running = pids.size();
    bool failed = false;
    while (running > 0) {
        for (std::size_t k = 0; k < a.nodes; ++k)
            highest[k] = std::max(highest[k], disk_usage(a.dir + "/node-" + std::to_string(k) + "/train.stream"));
        for (auto& pid : pids) {
            int status = 0;
            if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = true;
                pid = 0;
                --running;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (failed) throw std::runtime_error("a rank failed (see its message above)");
    return highest;
}

double mb(std::uint64_t b) { return static_cast<double>(b) / 1e6; }

int job(const Args& a) {
    if (a.limit == 0) throw std::runtime_error("job needs --limit BYTES (each node's disk for the stream)");
    fs::create_directories(a.dir);
    const std::size_t world = a.nodes * a.ranks_per_node;
    std::printf("job: %zu nodes x %zu ranks reading %s, 2 epochs, each node's stream cache limited to %.2f MB\n",
                a.nodes, a.ranks_per_node, a.target.c_str(), mb(a.limit));
    std::vector<std::uint64_t> watched = run_ranks(a, false);
    int bad = 0;
    auto fail = [&](const std::string& why) {
        std::fprintf(stderr, "streaming: %s\n", why.c_str());
        ++bad;
    };

    // What each node fetched and held.
    std::vector<std::map<std::string, std::uint64_t>> reports;
    for (std::size_t r = 0; r < world; ++r) reports.push_back(read_report(rank_file(a, r, "report")));
    const std::uint64_t records = reports[0]["records"];
    for (std::size_t k = 0; k < a.nodes; ++k) {
        std::uint64_t e0 = 0, e1 = 0, b0 = 0, b1 = 0, high = 0;
        for (std::size_t r = k * a.ranks_per_node; r < (k + 1) * a.ranks_per_node; ++r) {
            e0 += reports[r]["epoch0_bytes_fetched"];
            e1 += reports[r]["epoch1_bytes_fetched"] - reports[r]["epoch0_bytes_fetched"];
            b0 += reports[r]["epoch0_blocks_fetched"];
            b1 += reports[r]["epoch1_blocks_fetched"] - reports[r]["epoch0_blocks_fetched"];
            high = std::max(high, reports[r]["disk_high_water"]);
        }
        std::printf("node %zu: fetched %.2f MB (%ju blocks) in epoch 0, %.2f MB (%ju blocks) in epoch 1; disk high "
                    "water %.2f MB (ranks' stats), %.2f MB (watched from outside) of the %.2f MB limit\n",
                    k, mb(e0), static_cast<std::uintmax_t>(b0), mb(e1), static_cast<std::uintmax_t>(b1), mb(high),
                    mb(watched[k]), mb(a.limit));
        if (high > a.limit || watched[k] > a.limit) fail("node " + std::to_string(k) + " went over its limit");
        if (b1 >= b0) fail("node " + std::to_string(k) + " fetched as much in epoch 1 as in epoch 0");
    }

    // The order: per epoch, equal sizes, every record read, nodes disjoint; epochs differ.
    std::vector<std::vector<std::size_t>> epoch_orders;
    for (int e = 0; e < 2; ++e) {
        std::vector<int> node_of(records, -1);
        std::vector<std::size_t> all;
        std::size_t reads = 0;
        bool shared = false;
        for (std::size_t r = 0; r < world; ++r) {
            std::ifstream in(rank_file(a, r, "epoch" + std::to_string(e)));
            std::size_t n = 0;
            for (std::size_t i; in >> i; ++n) {
                const int node = static_cast<int>(r / a.ranks_per_node);
                if (i >= records) throw std::runtime_error("record index out of range");
                if (node_of[i] >= 0 && node_of[i] != node) shared = true;
                node_of[i] = node;
                all.push_back(i);
            }
            if (n != reports[r]["size"]) fail("rank " + std::to_string(r) + " read " + std::to_string(n) +
                                              " records in epoch " + std::to_string(e));
            reads += n;
        }
        const std::size_t missing = static_cast<std::size_t>(std::count(node_of.begin(), node_of.end(), -1));
        std::printf("epoch %d: %zu ranks x %ju records, %zu of %ju records read (%zu padding repeats), each by one "
                    "node\n",
                    e, world, static_cast<std::uintmax_t>(reports[0]["size"]), records - missing,
                    static_cast<std::uintmax_t>(records), reads - (records - missing));
        if (missing > 0) fail(std::to_string(missing) + " records unread in epoch " + std::to_string(e));
        if (shared) fail("a record was read by two nodes in epoch " + std::to_string(e));
        epoch_orders.push_back(all);
    }
    if (epoch_orders[0] == epoch_orders[1]) fail("epoch 1 repeated epoch 0's order");

    // The resume: new processes, new producers, restore(state), read to the end of epoch 1.
    run_ranks(a, true);
    std::uint64_t compared = 0, refetched = 0;
    const int bad_before = bad;
    for (std::size_t r = 0; r < world; ++r) {
        auto m = read_report(rank_file(a, r, "resumed"));
        compared += m["compared"];
        refetched += m["bytes_fetched"];
        if (m["differing"] != 0 || m["compared"] != m["expected"])
            fail("rank " + std::to_string(r) + " resumed at step " + std::to_string(m["from_step"]) + ": read " +
                 std::to_string(m["compared"]) + " records of the " + std::to_string(m["expected"]) +
                 " left, " + std::to_string(m["differing"]) + " of them not the first run's");
    }
    std::printf("resume: %zu new processes restored their checkpoints (epoch 1, step %ju) and read %ju records, "
                "%s (fetching %.2f MB: what the node caches no longer held)\n",
                world, static_cast<std::uintmax_t>(reports[0]["checkpoint_step"]),
                static_cast<std::uintmax_t>(compared),
                bad == bad_before ? "exactly what the first run read after it" : "NOT what the first run read",
                mb(refetched));
    if (bad == 0) std::printf("streaming: every check passed\n");
    return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) try {
    Args a = parse(argc, argv);
    if (a.mode == "publish") return publish(a);
    if (a.mode == "job") return job(a);
    if (a.mode == "rank") return a.resume ? resume_rank(a) : run_rank(a);
    throw std::runtime_error("unknown mode " + a.mode);
} catch (const std::exception& e) {
    std::fprintf(stderr, "streaming: %s\n", e.what());
    return 1;
}
