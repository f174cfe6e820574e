/**
 * The backend registry. Backends register by name with a priority and an async factory; a factory
 * runs at most once (its result, or its failure and reason, is cached). `ready()` picks the backend of
 * highest effective priority that initialises, falling back past the ones that fail; a backend may
 * lower its own rank once it knows its device (`Backend.effectivePriority`, e.g. a software GPU
 * adapter). `setBackend(name)` switches at runtime, whatever the rank.
 */
import { BackendUnavailableError, NoBackendError, UnknownBackendError } from '../errors.js';
import type { Backend } from './kernels.js';

export type BackendFactory = () => Backend | Promise<Backend>;

export interface BackendRegistration {
  readonly name: string;
  /** Higher wins in `ready()`. Convention: cuda 300, webgpu 200, cpu 100. */
  readonly priority: number;
  readonly factory: BackendFactory;
}

export interface BackendInfo {
  readonly name: string;
  /** The registered priority. */
  readonly priority: number;
  /** The priority `ready()` ranks it at: the registered one, or lower where the backend lowered it. */
  readonly effectivePriority: number;
  /** Why it ranks where it does, in a sentence. */
  readonly ranking: string;
  readonly available: boolean;
  readonly active: boolean;
  /** Device description, when available. */
  readonly device?: string;
  /** Why it is not available, when it is not. */
  readonly reason?: string;
}

interface Entry {
  registration: BackendRegistration;
  init?: Promise<{ backend: Backend } | { error: BackendUnavailableError }>;
}

interface RegistryState {
  entries: Map<string, Entry>;
  active: Backend | null;
  /** Incremented by every setBackend call; a slower earlier call that finishes later is ignored. */
  generation: number;
  /** Instances disposeBackend() released: their tensors refuse to be used, on every backend alike. */
  disposed: WeakSet<Backend>;
}

// One registry per process even if two copies of core are loaded (an ESM and a CJS build).
const REGISTRY_KEY = Symbol.for('@diff-transformer/core/registry');
const globalStore = globalThis as unknown as Record<symbol, RegistryState | undefined>;
// biome-ignore lint/suspicious/noAssignInExpressions: created by whichever copy of core loads first, then shared
const state: RegistryState = (globalStore[REGISTRY_KEY] ??= {
  entries: new Map(),
  active: null,
  generation: 0,
  disposed: new WeakSet(),
});

/**
 * Registers (or re-registers) a backend. Backend packages call this when imported; calling it again
 * with the same name replaces the factory and priority but keeps an instance that already initialised.
 */
export function registerBackend(name: string, factory: BackendFactory, priority = 0): void {
  const existing = state.entries.get(name);
  const registration = { name, priority, factory };
  if (existing) existing.registration = registration;
  else state.entries.set(name, { registration });
}

/** Names of all registered backends, highest priority first. */
export function registeredBackends(): string[] {
  return sortedEntries().map((e) => e.registration.name);
}

/** Initialises a backend (once) without making it active. */
export async function initializedBackend(name: string): Promise<Backend> {
  const result = await initialise(entryFor(name));
  if ('error' in result) throw result.error;
  return result.backend;
}

/** Makes `name` the active backend, initialising it if needed. The latest call wins. */
export async function setBackend(name: string): Promise<Backend> {
  const generation = ++state.generation;
  const backend = await initializedBackend(name);
  if (generation === state.generation) state.active = backend;
  return backend;
}

/**
 * Resolves to the active backend; if none is active yet, activates the backend of highest effective
 * priority that initialises (ties go to the higher registered priority). Throws NoBackendError
 * listing every backend's reason when none does.
 */
export async function ready(): Promise<Backend> {
  if (state.active) return state.active;
  const generation = state.generation;
  const reasons: { backend: string; reason: string }[] = [];
  let best: { backend: Backend; priority: number } | null = null;
  for (const entry of sortedEntries()) {
    // A backend can only lower its rank, so none of the rest can beat one already ranked this high.
    if (best && best.priority >= entry.registration.priority) break;
    const result = await initialise(entry);
    if ('error' in result) {
      reasons.push({ backend: entry.registration.name, reason: result.error.reason });
      continue;
    }
    const { value } = rank(entry.registration, result.backend);
    if (!best || value > best.priority) best = { backend: result.backend, priority: value };
  }
  if (!best) throw new NoBackendError(reasons);
  // A setBackend() that ran meanwhile decides instead.
  if (generation === state.generation && !state.active) state.active = best.backend;
  return state.active ?? best.backend;
}

/** The active backend. Throws if none is active: call `await ready()` or `await setBackend(name)` first. */
export function activeBackend(): Backend {
  if (state.active) return state.active;
  throw new NoBackendError([
    ...sortedEntries().map((e) => ({
      backend: e.registration.name,
      reason: 'registered but not initialised yet: await ready() or await setBackend(name) first',
    })),
  ]);
}

/**
 * Every registered backend: whether it initialises, its device or the reason it does not, and why it
 * ranks where it does. Ordered as `ready()` ranks them (highest effective priority first).
 */
export async function listBackends(): Promise<BackendInfo[]> {
  const infos: BackendInfo[] = [];
  for (const entry of sortedEntries()) {
    const result = await initialise(entry);
    const { name, priority } = entry.registration;
    if ('backend' in result) {
      const { value, reason } = rank(entry.registration, result.backend);
      infos.push({
        name,
        priority,
        effectivePriority: value,
        ranking: reason,
        available: true,
        active: state.active === result.backend,
        device: result.backend.device,
      });
    } else {
      infos.push({
        name,
        priority,
        effectivePriority: priority,
        ranking: 'not ranked: it is unavailable',
        available: false,
        active: false,
        reason: result.error.reason,
      });
    }
  }
  // Stable: equal effective priorities keep the registered order, as in ready().
  return infos.sort((a, b) => b.effectivePriority - a.effectivePriority);
}

/** Where an initialised backend ranks: its registered priority, unless it lowered it itself. */
function rank(registration: BackendRegistration, backend: Backend): { value: number; reason: string } {
  const lowered = backend.effectivePriority;
  if (lowered && Number.isFinite(lowered.value) && lowered.value < registration.priority) {
    return {
      value: lowered.value,
      reason: `priority ${registration.priority} lowered to ${lowered.value}: ${lowered.reason}`,
    };
  }
  return { value: registration.priority, reason: `its registered priority, ${registration.priority}` };
}

/**
 * Disposes an initialised backend and forgets it, so the next use creates it afresh (its factory runs
 * again). Tensors still on it become unusable: using one throws BackendDisposedError, whatever the
 * backend; disposing one is harmless.
 */
export async function disposeBackend(name: string): Promise<void> {
  const entry = entryFor(name);
  const init = entry.init;
  entry.init = undefined;
  if (!init) return;
  const result = await init;
  if ('backend' in result) {
    if (state.active === result.backend) state.active = null;
    state.disposed.add(result.backend);
    await result.backend.dispose?.();
  }
}

/** Whether disposeBackend() released this backend instance. */
export function isBackendDisposed(backend: Backend): boolean {
  return state.disposed.has(backend);
}

function entryFor(name: string): Entry {
  const entry = state.entries.get(name);
  if (!entry) throw new UnknownBackendError(name, registeredBackends());
  return entry;
}

function sortedEntries(): Entry[] {
  return [...state.entries.values()].sort((a, b) => b.registration.priority - a.registration.priority);
}

function initialise(entry: Entry): Promise<{ backend: Backend } | { error: BackendUnavailableError }> {
  entry.init ??= (async () => {
    const { name, factory } = entry.registration;
    try {
      return { backend: await factory() };
    } catch (cause) {
      if (cause instanceof BackendUnavailableError) return { error: cause };
      const reason = cause instanceof Error ? cause.message : String(cause);
      return { error: new BackendUnavailableError(name, reason, cause) };
    }
  })();
  return entry.init;
}
