package main

import "errors"

var (
	errUsage       = errors.New("usage: release lint|current|set|tags|proxy -root DIR [-version V] [-out DIR]")
	errReplace     = errors.New("alknet/release: a go.mod of the workspace has a replace directive")
	errMixed       = errors.New("alknet/release: sibling requirements name different versions")
	errBadVersion  = errors.New("alknet/release: not a canonical semantic version")
	errNoSiblings  = errors.New("alknet/release: no module requires a sibling")
	errDuplicateWS = errors.New("alknet/release: two workspace modules share a path")
	errCycle       = errors.New("alknet/release: sibling requirements form a cycle")
)
