/*
 * The job every thread works on: a kernel split into independent tasks, claimed with one atomic
 * counter. The main thread prepares a job (a kernel's *_prepare export), opens it, and every thread
 * (the main one too) calls job_run until no task is left. A kernel may have several phases (pack,
 * then compute); job_advance moves to the next once every task of the current one has finished.
 *
 * Tasks are claimed by counting `remaining` down, so a thread that wakes late for a job that is
 * already done reads remaining ≤ 0 and claims nothing, even while the next job is being prepared:
 * the count only becomes positive again when job_open publishes a fully written job.
 */
#pragma once

/* Runs task `task` of the current phase on thread `thread` (0 is the main thread). */
typedef void (*TaskFunction)(int task, int thread);
/* Sets up the next phase and returns its task count, or returns 0 when the kernel is done. */
typedef int (*AdvanceFunction)(void);

/* Makes `run` with `tasks` tasks the current phase (closed until job_open). Returns `tasks`. */
int job_begin(TaskFunction run, int tasks, AdvanceFunction advance);
