// The native engine of backend-cpu: the kernels of ../c (and ./matmul.c) compiled for this CPU,
// a heap of native memory the TypeScript side allocates tensors in, and a pool of std::threads that
// run the kernels' jobs (../c/job.c) exactly as the WebAssembly engine's worker threads do.
//
// One addon is built per instruction set (DIFFTX_ISA: avx512, avx2, baseline); the loader asks the
// baseline one what this CPU supports (CPUID, through __builtin_cpu_supports, which also checks that
// the operating system saves the wider registers) and loads the best one it may run.
#include <napi.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "entry-points.generated.h"

#ifndef DIFFTX_ISA
#define DIFFTX_ISA "baseline"
#endif

namespace {

// The heap: address space reserved once, pages committed by the system when first touched. Offsets
// below kHeapBase are never handed out, so offset 0 can mean "no tensor".
constexpr size_t kMaximumBytes = size_t{1} << 32;
constexpr size_t kHeapBase = 1024;
// How long a worker spins on the generation before it sleeps (a kernel follows another within tens of
// microseconds while a model runs; an idle pool must not keep cores busy), and the checks of the
// finished count the calling thread makes before it yields its core.
constexpr auto kWorkerSpin = std::chrono::microseconds(50);
constexpr int kMainSpins = 4000;

inline void Relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

class Pool {
 public:
  explicit Pool(int threads) {
    for (int t = 1; t < threads; t++) workers_.emplace_back([this, t] { Work(t); });
  }
  ~Pool() { Stop(); }

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs a prepared job phase by phase (as ../src/threads/pool.ts does): `tasks` is the first
  // phase's task count; a job too small to pay for waking the workers runs on this thread, still
  // counted to its end so that a worker that woke late for an earlier phase is waited for.
  void Run(Job* job, int tasks, bool parallel) {
    for (int phase = tasks; phase > 0; phase = job_advance(job)) {
      if (workers_.empty()) {
        job_open(job);
        job_run(job, 0);
      } else {
        RunPhase(job, phase, parallel && phase > 1);
      }
    }
  }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
    workers_.clear();
  }

  uint64_t parallel_phases = 0, tasks = 0, worker_tasks = 0;

 private:
  void RunPhase(Job* job, int count, bool wake) {
    // Reset before opening: a worker may claim (and count) tasks the moment the phase is open. The
    // job is published before the generation: a worker that sees the new generation sees the job.
    finished_.store(0);
    job_.store(job);
    job_open(job);
    if (wake) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        generation_.fetch_add(1);
      }
      wake_.notify_all();
    }
    const int ran = job_run(job, 0);
    int finished = finished_.fetch_add(ran) + ran;
    for (int i = 0; finished < count; i++) {
      if (i < kMainSpins) Relax();
      else std::this_thread::yield();
      finished = finished_.load(std::memory_order_acquire);
    }
    if (wake) parallel_phases++;
    tasks += count;
    worker_tasks += count - ran;
  }

  void Work(int thread) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t now = generation_.load(std::memory_order_acquire);
      const auto deadline = std::chrono::steady_clock::now() + kWorkerSpin;
      for (int i = 1; now == seen; i++) {
        Relax();
        // The clock is read every 64 checks; past the deadline the worker sleeps until woken.
        if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) {
          std::unique_lock<std::mutex> lock(mutex_);
          wake_.wait(lock, [&] { return generation_.load() != seen; });
        }
        now = generation_.load(std::memory_order_acquire);
      }
      seen = now;
      if (stop_.load()) return;
      // A worker that woke late for a phase this thread's caller ran alone finds no task left in it,
      // or claims tasks of the phase open now: the job counts them either way (../c/job.h).
      Job* job = job_.load();
      if (job == nullptr) continue;
      const int ran = job_run(job, thread);
      if (ran > 0) finished_.fetch_add(ran, std::memory_order_release);
    }
  }

  std::vector<std::thread> workers_;
  // The engine's job (one per engine, in its heap), set when the first phase runs on the workers.
  std::atomic<Job*> job_{nullptr};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> finished_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopped_ = false;
};

struct Engine {
  char* base = nullptr;
  Pool* pool = nullptr;
  napi_env env = nullptr;
};

// Engines not yet disposed: the environment's cleanup stops their threads (a joinable std::thread
// must never be destroyed, and worker threads must not outlive the process's teardown).
std::mutex engines_mutex;
std::set<Engine*> engines;
// Environments whose cleanup is registered: loading the addon twice in one (process.dlopen of the
// same file again) must not register the same hook twice, which Node refuses.
std::set<napi_env> hooked;

void StopEngine(Engine* engine) {
  if (engine->pool) {
    delete engine->pool;
    engine->pool = nullptr;
  }
}

// ---- kernel entry points bound to an engine's heap ------------------------------------------------
//
// Every entry point of the list (../src/c-kernels/entry-points.ts, through the generated header's
// C_KERNEL_ENTRY_POINTS) becomes a method of the engine object; its C signature gives the conversions.

template <typename T, typename Enable = void>
struct Argument;

template <typename T>
struct Argument<T, std::enable_if_t<std::is_integral_v<T>>> {
  static T Get(const Napi::CallbackInfo& info, size_t i, char*) {
    return static_cast<T>(info[i].As<Napi::Number>().Int32Value());
  }
};

template <typename T>
struct Argument<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static T Get(const Napi::CallbackInfo& info, size_t i, char*) {
    return static_cast<T>(info[i].As<Napi::Number>().DoubleValue());
  }
};

template <typename T>
struct Argument<T, std::enable_if_t<std::is_pointer_v<T>>> {
  static T Get(const Napi::CallbackInfo& info, size_t i, char* base) {
    const double offset = info[i].As<Napi::Number>().DoubleValue();
    // Offsets come from the TypeScript side's allocator; one outside the heap is a bug there, never
    // a write to foreign memory.
    if (!(offset >= 0 && offset < static_cast<double>(kMaximumBytes))) {
      throw Napi::RangeError::New(info.Env(), "a heap offset outside the native heap: " + std::to_string(offset));
    }
    return offset == 0 ? nullptr : reinterpret_cast<T>(base + static_cast<size_t>(offset));
  }
};

template <typename R, typename... A, size_t... I>
Napi::Value Invoke(R (*fn)(A...), const Napi::CallbackInfo& info, char* base, std::index_sequence<I...>) {
  if constexpr (std::is_void_v<R>) {
    fn(Argument<A>::Get(info, I, base)...);
    return info.Env().Undefined();
  } else {
    return Napi::Number::New(info.Env(), static_cast<double>(fn(Argument<A>::Get(info, I, base)...)));
  }
}

template <auto Fn>
struct Bound;

template <typename R, typename... A, R (*Fn)(A...)>
struct Bound<Fn> {
  static Napi::Value Call(const Napi::CallbackInfo& info) {
    auto* engine = static_cast<Engine*>(info.Data());
    if (info.Length() < sizeof...(A)) {
      throw Napi::TypeError::New(info.Env(), "expected " + std::to_string(sizeof...(A)) + " arguments, got " +
                                                 std::to_string(info.Length()));
    }
    if (engine->base == nullptr) throw Napi::Error::New(info.Env(), "the native engine was disposed");
    return Invoke(Fn, info, engine->base, std::index_sequence_for<A...>{});
  }
};

#define BIND(name) object.Set(#name, Napi::Function::New(env, Bound<&name>::Call, #name, engine));

// createEngine(threads) → the engine's heap and kernels.
Napi::Value CreateEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int threads = info.Length() > 0 ? info[0].As<Napi::Number>().Int32Value() : 1;
  if (threads < 1 || threads > 1024) throw Napi::RangeError::New(env, "threads: expected 1 to 1024");
  // Engines share no kernel state (each call's geometry lives in the Job the caller passes, in this
  // engine's heap), so any JavaScript thread of the process (worker_threads) may create its own.
  void* memory = mmap(nullptr, kMaximumBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
  if (memory == MAP_FAILED) {
    throw Napi::Error::New(env, std::string("cannot reserve the native heap's address space: ") + strerror(errno));
  }
  auto* engine = new Engine();
  engine->base = static_cast<char*>(memory);
  engine->pool = new Pool(threads);
  engine->env = env;
  {
    std::lock_guard<std::mutex> lock(engines_mutex);
    engines.insert(engine);
  }
  // The memory lives as long as the buffer: views made from it stay valid after dispose().
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, memory, kMaximumBytes, [](Napi::Env, void* data) {
    munmap(data, kMaximumBytes);
  });

  Napi::Object object = Napi::Object::New(env);
  object.Set("buffer", buffer);
  object.Set("heapBase", Napi::Number::New(env, kHeapBase));
  object.Set("maximumBytes", Napi::Number::New(env, static_cast<double>(kMaximumBytes)));
  object.Set("threads", Napi::Number::New(env, engine->pool->threads()));
  // run(job, tasks, parallel): runs the job a *_prepare entry point prepared in `job`.
  object.Set("run", Napi::Function::New(
                        env,
                        [](const Napi::CallbackInfo& info) {
                          auto* engine = static_cast<Engine*>(info.Data());
                          if (!engine->pool) throw Napi::Error::New(info.Env(), "the native engine was disposed");
                          Job* job = Argument<Job*>::Get(info, 0, engine->base);
                          if (job == nullptr) throw Napi::TypeError::New(info.Env(), "run: expected a job's heap offset");
                          engine->pool->Run(job, info[1].As<Napi::Number>().Int32Value(), info[2].ToBoolean());
                        },
                        "run", engine));
  object.Set("stats", Napi::Function::New(
                          env,
                          [](const Napi::CallbackInfo& info) -> Napi::Value {
                            auto* engine = static_cast<Engine*>(info.Data());
                            Napi::Object stats = Napi::Object::New(info.Env());
                            const Pool* pool = engine->pool;
                            stats.Set("parallelPhases", pool ? static_cast<double>(pool->parallel_phases) : 0.0);
                            stats.Set("tasks", pool ? static_cast<double>(pool->tasks) : 0.0);
                            stats.Set("workerTasks", pool ? static_cast<double>(pool->worker_tasks) : 0.0);
                            return stats;
                          },
                          "stats", engine));
  object.Set("dispose", Napi::Function::New(
                            env,
                            [](const Napi::CallbackInfo& info) {
                              auto* engine = static_cast<Engine*>(info.Data());
                              StopEngine(engine);
                              std::lock_guard<std::mutex> lock(engines_mutex);
                              engines.erase(engine);
                            },
                            "dispose", engine));
  C_KERNEL_ENTRY_POINTS(BIND)
  return object;
}

// What this CPU and operating system support, and which instruction set this addon was built for.
Napi::Value Cpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("isa", DIFFTX_ISA);
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  result.Set("avx2", __builtin_cpu_supports("avx2") != 0);
  result.Set("fma", __builtin_cpu_supports("fma") != 0);
  result.Set("avx512f", __builtin_cpu_supports("avx512f") != 0);
  result.Set("avx512bw", __builtin_cpu_supports("avx512bw") != 0);
  result.Set("avx512dq", __builtin_cpu_supports("avx512dq") != 0);
  result.Set("avx512vl", __builtin_cpu_supports("avx512vl") != 0);
#endif
  return result;
}

// An environment (the main thread's, or a worker thread's) ends: stop the pools it started.
void Cleanup(void* env) {
  std::lock_guard<std::mutex> lock(engines_mutex);
  for (auto it = engines.begin(); it != engines.end();) {
    if ((*it)->env == env) {
      StopEngine(*it);
      it = engines.erase(it);
    } else {
      ++it;
    }
  }
  hooked.erase(static_cast<napi_env>(env));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  {
    std::lock_guard<std::mutex> lock(engines_mutex);
    if (hooked.insert(env).second) napi_add_env_cleanup_hook(env, Cleanup, env);
  }
  exports.Set("createEngine", Napi::Function::New(env, CreateEngine, "createEngine"));
  exports.Set("cpu", Napi::Function::New(env, Cpu, "cpu"));
  return exports;
}

}  // namespace

NODE_API_MODULE(diff_transformer_cpu, Init)
