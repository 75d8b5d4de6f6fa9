// Typed access to an owned HTensor (numel, data_as<T> with its dtype and size checks),
// the names of the outcome enums (to_string), and the C++ side of the errors that say
// what to do next (issue 24).
#include "test_support.hpp"

#include <cstdint>
#include <sstream>
#include <type_traits>

using harmonics::HTensor;
using harmonics_test::contains;
using harmonics_test::expect_error;
using harmonics_test::make_f32;

namespace {

template <class T>
HTensor tensor_of(HTensor::DType dtype, HTensor::Shape shape, std::vector<T> values) {
    std::vector<std::byte> bytes(values.size() * sizeof(T));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return HTensor(dtype, std::move(shape), std::move(bytes));
}

}  // namespace

TEST(TypedAccess, NumelIsTheProductOfTheShape) {
    EXPECT_EQ(HTensor(HTensor::DType::Float32, {2, 3, 4}).numel(), 24u);
    EXPECT_EQ(HTensor(HTensor::DType::Float32, {5}).numel(), 5u);
    EXPECT_EQ(HTensor(HTensor::DType::Float32, {3, 0}).numel(), 0u);
    EXPECT_EQ(HTensor(HTensor::DType::Float32, {}).numel(), 1u);  // a scalar
}

TEST(TypedAccess, DataAsReadsEveryElementTypeItMatches) {
    const HTensor f = make_f32({0.5f, -2.0f, 3.25f});
    ASSERT_EQ(f.numel(), 3u);
    EXPECT_EQ(f.data_as<float>()[2], 3.25f);

    const HTensor d = tensor_of<double>(HTensor::DType::Float64, {2}, {1e300, -0.125});
    EXPECT_EQ(d.data_as<double>()[0], 1e300);
    const HTensor i32 = tensor_of<std::int32_t>(HTensor::DType::Int32, {1, 2}, {-7, 1 << 30});
    EXPECT_EQ(i32.data_as<std::int32_t>()[1], 1 << 30);
    const HTensor i64 = tensor_of<std::int64_t>(HTensor::DType::Int64, {1}, {-(std::int64_t{1} << 40)});
    EXPECT_EQ(i64.data_as<std::int64_t>()[0], -(std::int64_t{1} << 40));
    const HTensor u8 = tensor_of<std::uint8_t>(HTensor::DType::UInt8, {2, 2}, {1, 2, 254, 255});
    EXPECT_EQ(u8.data_as<std::uint8_t>()[3], 255);

    static_assert(std::is_same<decltype(f.data_as<float>()), const float*>::value, "const tensor: const T*");
}

TEST(TypedAccess, MutableDataAsWritesIntoTheTensor) {
    HTensor t = make_f32({1.0f, 2.0f});
    float* v = t.data_as<float>();
    static_assert(std::is_same<decltype(v), float*>::value, "mutable tensor: T*");
    v[1] = 42.0f;
    EXPECT_EQ(harmonics_test::floats(t)[1], 42.0f);
}

TEST(TypedAccess, AnotherElementTypeThrowsNamingBoth) {
    HTensor f = make_f32({1.0f, 2.0f});
    expect_error([&] { (void)f.data_as<double>(); }, HARMONICS_STATUS_INVALID_ARGUMENT,
                 "the tensor holds Float32 elements, not Float64", "data_as<double> of a Float32 tensor");
    expect_error([&] { (void)std::as_const(f).data_as<std::int32_t>(); }, HARMONICS_STATUS_INVALID_ARGUMENT,
                 "not Int32", "const data_as<int32_t> of a Float32 tensor");
    const HTensor u8 = tensor_of<std::uint8_t>(HTensor::DType::UInt8, {4}, {1, 2, 3, 4});
    expect_error([&] { (void)u8.data_as<float>(); }, HARMONICS_STATUS_INVALID_ARGUMENT,
                 "holds UInt8 elements, not Float32", "data_as<float> of a UInt8 tensor");
}

TEST(TypedAccess, BytesThatDoNotMatchTheShapeThrowInsteadOfReadingOutOfBounds) {
    // The constructor takes the bytes as given; data_as refuses a short buffer.
    HTensor t(HTensor::DType::Float32, {4}, std::vector<std::byte>(8));
    expect_error([&] { (void)t.data_as<float>(); }, HARMONICS_STATUS_INVALID_ARGUMENT,
                 "holds 8 bytes, its shape needs 4 x 4", "data_as over 8 bytes for 4 floats");
    HTensor odd(HTensor::DType::Float32, {1}, std::vector<std::byte>(5));
    expect_error([&] { (void)odd.data_as<float>(); }, HARMONICS_STATUS_INVALID_ARGUMENT, "holds 5 bytes",
                 "data_as over 5 bytes for 1 float");
    EXPECT_NO_THROW((void)HTensor(HTensor::DType::Float32, {0}).data_as<float>());  // no elements
}

class TypedAccessOfRecords : public harmonics_test::ScratchDir {};

TEST_F(TypedAccessOfRecords, RecordsFromACacheReadAsFloats) {
    std::istringstream csv("1,2,3\n4,5,6\n");
    auto base = std::make_shared<harmonics::CsvProducer>(csv);
    harmonics::DiskCacheProducer cache(base, "typed.cache");
    const HTensor a = cache.at(1);
    ASSERT_EQ(a.numel(), 3u);
    EXPECT_EQ(a.data_as<float>()[0], 4.0f);
    EXPECT_EQ(a.data_as<float>()[2], 6.0f);
}

TEST(OutcomeNames, ToStringNamesEveryOutcome) {
    using harmonics::CacheOutcome;
    using harmonics::HttpOutcome;
    EXPECT_EQ(harmonics::to_string(CacheOutcome::Reused), "Reused");
    EXPECT_EQ(harmonics::to_string(CacheOutcome::Created), "Created");
    EXPECT_EQ(harmonics::to_string(CacheOutcome::Appended), "Appended");
    EXPECT_EQ(harmonics::to_string(CacheOutcome::Rebuilt), "Rebuilt");
    EXPECT_EQ(harmonics::to_string(HttpOutcome::Reused), "Reused");
    EXPECT_EQ(harmonics::to_string(HttpOutcome::Downloaded), "Downloaded");
    EXPECT_EQ(harmonics::to_string(HttpOutcome::Revalidated), "Revalidated");
    EXPECT_EQ(harmonics::to_string(HttpOutcome::Rebuilt), "Rebuilt");
    EXPECT_EQ(harmonics::to_string(HTensor::DType::Int64), "Int64");
    EXPECT_EQ(harmonics::to_string(static_cast<CacheOutcome>(9)), "CacheOutcome(9)");
}

class NextStepErrors : public harmonics_test::ScratchDir {};

TEST_F(NextStepErrors, ASamplerOverACsvFileSuggestsADiskCache) {
    write_file("train.csv", "1,2\n3,4\n");
    auto csv = std::make_shared<harmonics::CsvProducer>("train.csv");
    expect_error([&] { harmonics::SampledProducer sampled(csv); }, HARMONICS_STATUS_NO_RANDOM_ACCESS,
                 "wrap it in a DiskCacheProducer", "a sampler over a CsvProducer");
    auto cached = std::make_shared<harmonics::DiskCacheProducer>(csv, "train.cache");
    harmonics::SampledProducer sampled(cached);
    EXPECT_EQ(sampled.size(), 2u);
}

TEST(NextStepErrorsHttp, AUrlWithoutASchemeSaysWhichToAdd) {
    expect_error([] { (void)harmonics::HttpProducer::from_url("127.0.0.1:8080/data"); },
                 HARMONICS_STATUS_INVALID_ARGUMENT, "add http://, https:// or s3:// in front",
                 "a URL without a scheme");
}

TEST(NextStepErrorsHttp, AJsonBodySaysItIsNotTheWireFormat) {
    harmonics_test::LoopbackHttpServer server(
        [](const std::string&) { return harmonics_test::http_response("200 OK", "{\"x\": [1, 2]}"); });
    harmonics::HttpOptions opts;
    opts.cache = false;
    try {
        (void)harmonics::HttpProducer::from_url(server.endpoint() + "/data.json", opts);
        ADD_FAILURE() << "a JSON body was accepted";
    } catch (const harmonics::Error& e) {
        EXPECT_TRUE(contains(e.what(), "unknown dtype code 123")) << e.what();
        EXPECT_TRUE(contains(e.what(), "this is not the wire format")) << e.what();
    }
}
