#include "entry-points.generated.h"
#include "job.h"
#include "simd.h"

/* Bytes of a Job, for the engine to allocate (64-byte aligned) in its heap. */
uint32_t job_bytes(void) { return sizeof(Job); }

int job_begin(Job* job, TaskFunction run, int tasks, AdvanceFunction advance) {
  job->run = run;
  job->tasks = tasks;
  job->advance = advance;
  return tasks;
}

/* Publishes the prepared phase: from here on its tasks can be claimed. */
void job_open(Job* job) { __atomic_store_n(&job->remaining, job->tasks, __ATOMIC_SEQ_CST); }

/* Claims and runs tasks until none is left; returns how many this thread ran. */
int job_run(Job* job, int thread) {
  int ran = 0;
  for (;;) {
    const int claimed = __atomic_fetch_sub(&job->remaining, 1, __ATOMIC_SEQ_CST);
    if (claimed <= 0) return ran;
    /* Highest index first: kernels put their most expensive tasks there (late causal rows). */
    job->run(job, claimed - 1, thread);
    ran++;
  }
}

/* Called once every task of the phase has finished: the next phase's task count, or 0. */
int job_advance(Job* job) {
  if (!job->advance) return 0;
  const AdvanceFunction advance = job->advance;
  job->advance = 0;
  return advance(job);
}
