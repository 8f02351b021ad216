package sqlite

import "database/sql"

// Stats returns the reader pool's and the writer's sql.DBStats added
// together, for the app_db_pool_* metrics (glasshouse-api registers them
// under db="sqlite"). A non-zero WaitCount means
// requests queued for the single writer or for a reader.
func (s *Store) Stats() sql.DBStats {
	r, w := s.r.Stats(), s.w.Stats()
	return sql.DBStats{
		MaxOpenConnections: r.MaxOpenConnections + w.MaxOpenConnections,
		OpenConnections:    r.OpenConnections + w.OpenConnections,
		InUse:              r.InUse + w.InUse,
		Idle:               r.Idle + w.Idle,
		WaitCount:          r.WaitCount + w.WaitCount,
		WaitDuration:       r.WaitDuration + w.WaitDuration,
		MaxIdleClosed:      r.MaxIdleClosed + w.MaxIdleClosed,
		MaxIdleTimeClosed:  r.MaxIdleTimeClosed + w.MaxIdleTimeClosed,
		MaxLifetimeClosed:  r.MaxLifetimeClosed + w.MaxLifetimeClosed,
	}
}
