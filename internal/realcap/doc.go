// Package realcap holds the real-capture corpus test: public captures no
// one here made (the test traces of the Zeek network analyser), each
// classified by analyze and by watch --read and compared connection by
// connection with tshark's reading of the same packets.
package realcap
