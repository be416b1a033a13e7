package subscribers

// ParseClientFrameForTest exposes the client-frame parser to the fuzzer.
func ParseClientFrameForTest(b []byte) error {
	_, err := parseClientFrame(b)
	return err
}
