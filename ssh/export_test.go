package ssh

// SetBeforeTrack installs a hook that runs after an SSH connection has
// authenticated and before Reauthorize can see it.
func SetBeforeTrack(s *Server, f func()) { s.beforeTrack = f }
