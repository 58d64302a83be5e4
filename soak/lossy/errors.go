package lossy

import "errors"

// ErrBadRate is returned by New for a drop, duplicate or reorder rate
// outside 0..1.
var ErrBadRate = errors.New("alknet/lossy: a rate must be between 0 and 1")
