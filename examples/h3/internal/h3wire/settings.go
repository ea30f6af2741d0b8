package h3wire

// Setting identifiers (RFC 9114 section 7.2.4.1, RFC 9204 section 5).
const (
	SettingQPACKMaxTableCapacity uint64 = 0x01
	SettingMaxFieldSectionSize   uint64 = 0x06
	SettingQPACKBlockedStreams   uint64 = 0x07
)

// Setting is one identifier/value pair of a SETTINGS frame.
type Setting struct{ ID, Value uint64 }

// AppendSettings appends a SETTINGS frame holding s, in order.
func AppendSettings(b []byte, s []Setting) []byte {
	var p []byte
	for _, st := range s {
		p = AppendVarint(AppendVarint(p, st.ID), st.Value)
	}
	return AppendFrame(b, FrameSettings, p)
}

// ParseSettings parses a SETTINGS payload. A duplicate identifier or an
// HTTP/2 setting (0x00, 0x02-0x05) is a connection error H3_SETTINGS_ERROR;
// a truncated pair is H3_FRAME_ERROR. Unknown identifiers, reserved grease
// ones included, are kept: callers ignore what they do not know.
func ParseSettings(p []byte) (map[uint64]uint64, error) {
	m := make(map[uint64]uint64)
	for len(p) > 0 {
		id, n := ConsumeVarint(p)
		if n == 0 {
			return nil, ConnError(FrameError, "truncated SETTINGS identifier")
		}
		p = p[n:]
		v, n := ConsumeVarint(p)
		if n == 0 {
			return nil, ConnError(FrameError, "truncated SETTINGS value")
		}
		p = p[n:]
		if id == 0x00 || (id >= 0x02 && id <= 0x05) {
			return nil, ConnError(SettingsError, "HTTP/2 setting 0x%x", id)
		}
		if _, dup := m[id]; dup {
			return nil, ConnError(SettingsError, "duplicate setting 0x%x", id)
		}
		m[id] = v
	}
	return m, nil
}
