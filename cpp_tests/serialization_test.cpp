// write_tensor/read_tensor: the original wire format, byte for byte, and hostile input.

#include <gtest/gtest.h>

#include <sstream>

#include <harmonics/serialization.hpp>

using harmonics::HTensor;

TEST(Serialization, WireBytesMatchTheOriginalLayout) {
    HTensor t(HTensor::DType::Int32, {2, 1}, std::vector<std::byte>(8, std::byte{7}));
    std::ostringstream os;
    harmonics::write_tensor(os, t);
    const std::string expected("\x02\x02\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00", 17);
    EXPECT_EQ(os.str(), expected + std::string(8, '\x07'));
}

TEST(Serialization, RoundTripOfSeveralRecordsThenEndOfStream) {
    std::stringstream ss;
    HTensor a(HTensor::DType::Float64, {3}, std::vector<std::byte>(24, std::byte{1}));
    HTensor b;  // default: empty tensor
    harmonics::write_tensor(ss, a);
    harmonics::write_tensor(ss, b);
    HTensor ra = harmonics::read_tensor(ss);
    HTensor rb = harmonics::read_tensor(ss);
    EXPECT_EQ(ra.dtype(), HTensor::DType::Float64);
    EXPECT_EQ(ra.shape(), (HTensor::Shape{3}));
    EXPECT_EQ(ra.data(), a.data());
    EXPECT_TRUE(rb.shape().empty());
    EXPECT_TRUE(rb.data().empty());
    EXPECT_THROW(harmonics::read_tensor(ss), harmonics::Error);
}

TEST(Serialization, RecordClaiming4GiBIsAnErrorNotAnAllocation) {
    std::string bytes("\x00\x01\x00\x00\x00\x04\x00\x00\x00\xff\xff\xff\xff" "abcd", 17);
    std::istringstream is(bytes);
    try {
        harmonics::read_tensor(is);
        FAIL();
    } catch (const harmonics::Error& e) {
        EXPECT_EQ(e.status(), HARMONICS_STATUS_WIRE);
        EXPECT_NE(std::string(e.what()).find("4294967295"), std::string::npos) << e.what();
    }
}

TEST(Serialization, TruncatedHeaderAndBadDtypeAreErrors) {
    std::istringstream cut(std::string("\x00\x01\x00", 3));
    EXPECT_THROW(harmonics::read_tensor(cut), harmonics::Error);
    std::istringstream bad(std::string("\x09\x00\x00\x00\x00\x00\x00\x00\x00", 9));
    EXPECT_THROW(harmonics::read_tensor(bad), harmonics::Error);
}
