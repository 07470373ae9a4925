package assist

import "github.com/mtuscope/mtuscope/probe"

var _ probe.Assistant = (*Client)(nil)
