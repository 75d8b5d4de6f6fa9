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
    HTensor b(HTensor::DType::UInt8, {0});  // an empty tensor: 0 elements, 0 bytes
    HTensor c(HTensor::DType::Int32, {}, std::vector<std::byte>(4, std::byte{9}));  // a scalar
    harmonics::write_tensor(ss, a);
    harmonics::write_tensor(ss, b);
    harmonics::write_tensor(ss, c);
    HTensor ra = harmonics::read_tensor(ss);
    HTensor rb = harmonics::read_tensor(ss);
    HTensor rc = harmonics::read_tensor(ss);
    EXPECT_EQ(ra.dtype(), HTensor::DType::Float64);
    EXPECT_EQ(ra.shape(), (HTensor::Shape{3}));
    EXPECT_EQ(ra.data(), a.data());
    EXPECT_EQ(rb.shape(), (HTensor::Shape{0}));
    EXPECT_TRUE(rb.data().empty());
    EXPECT_TRUE(rc.shape().empty());
    EXPECT_EQ(rc.data(), c.data());
    EXPECT_THROW(harmonics::read_tensor(ss), harmonics::Error);
}

TEST(Serialization, ATensorWhoseBytesDoNotMatchItsShapeIsRefusedWhenWritten) {
    // The default HTensor is a float32 scalar without its 4 bytes: written, it would be
    // nine zero bytes that every reader refuses, so it is refused here, nothing written.
    std::ostringstream os;
    try {
        harmonics::write_tensor(os, HTensor{});
        FAIL() << "the default HTensor was written";
    } catch (const harmonics::Error& e) {
        EXPECT_EQ(e.status(), HARMONICS_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("float32[] has 0 data bytes, its shape needs 4"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_TRUE(os.str().empty());
    HTensor short_one(HTensor::DType::Float64, {2}, std::vector<std::byte>(15));
    EXPECT_THROW(harmonics::write_tensor(os, short_one), harmonics::Error);
    EXPECT_TRUE(os.str().empty());
    // And read: nine zero bytes are not a record.
    std::istringstream zeros(std::string(9, '\0'));
    EXPECT_THROW(harmonics::read_tensor(zeros), harmonics::Error);
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
