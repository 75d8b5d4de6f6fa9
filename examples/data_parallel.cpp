// A data-parallel training loop: N ranks as processes on one node read one shared cache
// in a shuffled order (each rank its own disjoint slice of every epoch), checkpoint every
// K steps, and resume exactly where the checkpoint was after a `kill -9`.
//
//   data_parallel run    --rank R --world W [--records N] [--steps S] [--every K]
//                        [--dir D] [--seed X] [--resume] [--pause-us U]
//   data_parallel verify --world W [--records N] [--steps S] [--dir D] [--seed X]
//
// `run` trains rank R for S steps: record i of the dataset holds the value i, and each
// step appends "<step> <value>" to D/log-R.txt (what the rank trained on). Every K steps
// it saves D/ckpt-R.bin: the sampler's state (a plain 96-byte struct) and the step,
// written to a temp file and renamed, so a kill at any moment leaves the last complete
// checkpoint. `--resume` restores that state (O(1), no replay), truncates the log to the
// checkpoint's step and carries on. `verify` checks every rank's log against the order
// an uninterrupted job produces. examples/data_parallel_test.sh runs the whole story.
//
// Exit status 77: the cache has no random access in this build (nothing to show).
#include <harmonics/dataset.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

/// The dataset: record i is float32[4] {i, i, i, i}.
class Synthetic : public harmonics::Producer {
  public:
    explicit Synthetic(std::size_t n) : n_{n} {}
    harmonics::HTensor next() override {
        float v = static_cast<float>(cursor_);
        cursor_ = (cursor_ + 1) % n_;
        std::vector<std::byte> bytes(4 * sizeof(float));
        for (int k = 0; k < 4; ++k) std::memcpy(bytes.data() + k * sizeof v, &v, sizeof v);
        return harmonics::HTensor(harmonics::HTensor::DType::Float32, {4}, std::move(bytes));
    }
    std::size_t size() const override { return n_; }

  private:
    std::size_t n_;
    std::size_t cursor_{0};
};

struct Args {
    std::string mode;
    std::size_t rank = 0, world = 1, records = 1000, steps = 900, every = 25;
    std::uint64_t seed = 2024;
    std::string dir = ".";
    bool resume = false;
    long pause_us = 0;
};

Args parse(int argc, char** argv) {
    Args a;
    if (argc < 2) throw std::runtime_error("usage: data_parallel run|verify [options]");
    a.mode = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string k = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(k + " needs a value");
            return argv[++i];
        };
        if (k == "--rank") a.rank = std::stoul(val());
        else if (k == "--world") a.world = std::stoul(val());
        else if (k == "--records") a.records = std::stoul(val());
        else if (k == "--steps") a.steps = std::stoul(val());
        else if (k == "--every") a.every = std::stoul(val());
        else if (k == "--seed") a.seed = std::stoull(val());
        else if (k == "--dir") a.dir = val();
        else if (k == "--pause-us") a.pause_us = std::stol(val());
        else if (k == "--resume") a.resume = true;
        else throw std::runtime_error("unknown option " + k);
    }
    return a;
}

harmonics::SamplerOptions order(const Args& a, std::size_t rank) {
    harmonics::SamplerOptions o;
    o.seed = a.seed;
    o.rank = rank;
    o.world_size = a.world;
    return o;
}

struct Checkpoint {
    harmonics::SamplerState state;
    std::uint64_t step;
};

std::string path(const Args& a, const char* what, std::size_t rank, const char* ext) {
    return a.dir + "/" + what + "-" + std::to_string(rank) + ext;
}

void save(const Args& a, const Checkpoint& c) {
    std::string tmp = path(a, "ckpt", a.rank, ".bin.tmp");
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(&c), sizeof c);
        if (!out.flush()) throw std::runtime_error("cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path(a, "ckpt", a.rank, ".bin").c_str()) != 0)
        throw std::runtime_error("cannot rename " + tmp);
}

bool load(const Args& a, Checkpoint& c) {
    std::ifstream in(path(a, "ckpt", a.rank, ".bin"), std::ios::binary);
    return in && in.read(reinterpret_cast<char*>(&c), sizeof c) && in.gcount() == sizeof c;
}

/// Keeps the first `steps` lines of the log (a killed run may have logged past its
/// last checkpoint, and its last line may be cut).
void truncate_log(const std::string& file, std::uint64_t steps) {
    std::ifstream in(file);
    std::vector<std::string> keep;
    std::string line;
    while (keep.size() < steps && std::getline(in, line)) keep.push_back(line);
    in.close();
    std::ofstream out(file, std::ios::trunc);
    for (auto& l : keep) out << l << '\n';
}

int run(const Args& a) {
    auto cache = std::make_shared<harmonics::DiskCacheProducer>(std::make_shared<Synthetic>(a.records), "train.cache");
    if (!cache->has_random_access()) {
        std::fprintf(stderr, "data_parallel: this build's cache has no random access\n");
        return 77;
    }
    harmonics::SampledProducer train(cache, order(a, a.rank));
    std::uint64_t step = 0;
    std::string log = path(a, "log", a.rank, ".txt");
    Checkpoint c;
    if (a.resume && load(a, c)) {
        train.restore(c.state);  // O(1): no replay of the steps before
        step = c.step;
        std::printf("rank %zu: resumed at step %llu (epoch %llu, global position %llu)\n", a.rank,
                    static_cast<unsigned long long>(step), static_cast<unsigned long long>(c.state.epoch),
                    static_cast<unsigned long long>(c.state.position));
        truncate_log(log, step);
    } else {
        std::ofstream(log, std::ios::trunc);
    }
    std::FILE* out = std::fopen(log.c_str(), "a");
    if (!out) throw std::runtime_error("cannot open " + log);
    for (; step < a.steps;) {
        auto sample = train.next();  // a shuffled record of this rank's share
        float value;
        std::memcpy(&value, sample.data().data(), sizeof value);
        // ... forward, backward, all-reduce, optimizer step ...
        std::fprintf(out, "%llu %.0f\n", static_cast<unsigned long long>(step), value);
        std::fflush(out);
        ++step;
        if (step % a.every == 0) save(a, Checkpoint{train.state(), step});
        if (a.pause_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(a.pause_us));
    }
    std::fclose(out);
    std::printf("rank %zu: %zu steps done\n", a.rank, a.steps);
    return 0;
}

int verify(const Args& a) {
    int bad = 0;
    for (std::size_t r = 0; r < a.world; ++r) {
        harmonics::Sampler expected(a.records, order(a, r));
        std::ifstream in(path(a, "log", r, ".txt"));
        std::size_t step = 0;
        unsigned long long k;
        double value;
        while (in >> k >> value) {
            std::size_t want = expected.next();
            if (k != step || static_cast<std::size_t>(value) != want) {
                std::fprintf(stderr, "rank %zu step %zu: logged (%llu, %.0f), expected (%zu, %zu)\n", r, step, k,
                             value, step, want);
                ++bad;
                break;
            }
            ++step;
        }
        if (step != a.steps) {
            std::fprintf(stderr, "rank %zu: %zu steps logged, expected %zu\n", r, step, a.steps);
            ++bad;
        }
    }
    if (bad == 0) std::printf("verify: %zu ranks x %zu steps: exactly the uninterrupted order\n", a.world, a.steps);
    return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) try {
    Args a = parse(argc, argv);
    if (a.mode == "run") return run(a);
    if (a.mode == "verify") return verify(a);
    throw std::runtime_error("unknown mode " + a.mode);
} catch (const std::exception& e) {
    std::fprintf(stderr, "data_parallel: %s\n", e.what());
    return 1;
}
