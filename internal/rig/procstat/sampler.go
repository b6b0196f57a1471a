package procstat

import (
	"sync"
	"time"
)

// Sampler records the highest VmRSS of a process while it runs. VmHWM is a
// high-water mark for the whole life of the process and cannot be reset,
// so a peak during one request has to be sampled.
type Sampler struct {
	pid  int
	stop chan struct{}
	done sync.WaitGroup
	peak int64
}

// StartSampler samples pid every interval until Stop. A pid of 0 samples
// nothing.
func StartSampler(pid int, interval time.Duration) *Sampler {
	s := &Sampler{pid: pid, stop: make(chan struct{})}
	if pid == 0 {
		return s
	}
	s.sample()
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *Sampler) sample() {
	if rss, err := RSS(s.pid); err == nil && rss > s.peak {
		s.peak = rss
	}
}

// Stop ends sampling and returns the peak RSS seen, in bytes.
func (s *Sampler) Stop() int64 {
	close(s.stop)
	s.done.Wait()
	return s.peak
}
