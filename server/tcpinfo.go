package server

// TCPInfo is the part of the kernel's TCP_INFO the diagnosis uses.
type TCPInfo struct {
	Valid         bool  `json:"-"`
	State         uint8 `json:"state"`
	Retransmits   int   `json:"total_retrans"`
	Unacked       int   `json:"unacked"`
	SndMSS        int   `json:"snd_mss"`
	RcvMSS        int   `json:"rcv_mss"`
	AdvMSS        int   `json:"advmss"`
	PMTU          int   `json:"pmtu"`
	RcvOOOPack    int   `json:"rcv_ooopack"`
	BytesAcked    int64 `json:"bytes_acked"`
	BytesReceived int64 `json:"bytes_received"`
	RTTMicros     int   `json:"rtt_us"`
	Timestamps    bool  `json:"timestamps"`
}

// optionBytes is what TCP options add to every full-size segment's header.
func (ti TCPInfo) optionBytes() int {
	if ti.Timestamps {
		return 12
	}
	return 0
}
