package main

import "context"

func (s *suite) rowFuzz(ctx context.Context) []result   { return nil }
func (s *suite) rowAttack(ctx context.Context) []result { return nil }
func (s *suite) rowResume(ctx context.Context) []result { return nil }
