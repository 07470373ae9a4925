package flow

// Span is a byte range [Start, End) of one direction's stream, as offsets
// from its first byte: what the tracker's hello buffer holds, what an
// Observer's consumer records of the segments (package analyze's wire
// packets).
type Span struct{ Start, End uint32 }

// Len is the span's length in bytes.
func (s Span) Len() uint32 { return s.End - s.Start }

// Overlaps reports whether s and o share a byte.
func (s Span) Overlaps(o Span) bool { return s.Start < o.End && o.Start < s.End }
