// harmonics-dataset C++ wrapper: everything the dataset caching layer offers.
#pragma once

#include <harmonics/cache_lock.hpp>
#include <harmonics/core.hpp>
#include <harmonics/csv_producer.hpp>
#include <harmonics/disk_cache_producer.hpp>
#include <harmonics/error.hpp>
#include <harmonics/handles.hpp>
#include <harmonics/http_producer.hpp>
#include <harmonics/log.hpp>
#include <harmonics/maintenance.hpp>
#include <harmonics/partial_http_producer.hpp>
#include <harmonics/sampler.hpp>
#include <harmonics/serialization.hpp>
#include <harmonics/streaming.hpp>
#include <harmonics/transform_producers.hpp>
