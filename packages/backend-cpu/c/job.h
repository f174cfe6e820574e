/*
 * The job every thread of an engine works on: a kernel split into independent tasks, claimed with
 * one atomic counter. The calling thread prepares a job (a kernel's *_prepare entry point), opens it,
 * and every thread (the calling one too) calls job_run until no task is left. A kernel may have
 * several phases (pack, then compute); job_advance moves to the next once every task of the current
 * one has finished.
 *
 * A Job lives in the engine's heap, one per engine, and every entry point takes it: the kernel's
 * geometry and operands of the call (its arguments struct, written by its *_configure and *_prepare)
 * live in the Job, not in file-static state, so engines on different JavaScript threads of one
 * process (worker_threads, each with its own native engine) never share a kernel's state.
 *
 * Tasks are claimed by counting `remaining` down, so a thread that wakes late for a job that is
 * already done reads remaining ≤ 0 and claims nothing, even while the next job is being prepared:
 * the count only becomes positive again when job_open publishes a fully written job.
 */
#pragma once
#include "entry-points.generated.h"

/* Bytes of a kernel's arguments struct at most (the largest, attention's backward, is under 400). */
#define JOB_ARGS_BYTES 1024

/* Runs task `task` of the current phase on thread `thread` (0 is the calling thread). */
typedef void (*TaskFunction)(const Job* job, int task, int thread);
/* Sets up the next phase and returns its task count, or returns 0 when the kernel is done. */
typedef int (*AdvanceFunction)(Job* job);

struct Job {
  /* Tasks not yet claimed; claims count it down. Written only atomically. */
  int remaining;
  int tasks;
  TaskFunction run;
  AdvanceFunction advance;
  /* The running kernel's arguments struct, on a cache line of its own, away from the claims. */
  _Alignas(64) unsigned char args[JOB_ARGS_BYTES];
};

/* The kernel's arguments struct of type `Type` in `job` (Type const-qualified where the job is). */
#define JOB_ARGS(Type, job) ((Type*)(const void*)(job)->args)
/* Fails the build where a kernel's arguments struct outgrows the job. */
#define JOB_ARGS_FIT(Type) _Static_assert(sizeof(Type) <= JOB_ARGS_BYTES, #Type " outgrows JOB_ARGS_BYTES")

/* Makes `run` with `tasks` tasks the current phase of `job` (closed until job_open). Returns `tasks`. */
int job_begin(Job* job, TaskFunction run, int tasks, AdvanceFunction advance);
