import { ArgumentError } from '../errors.js';

/** What a scope tracks: anything with a dispose (tensors; scope.ts needs no more of them). */
interface Tracked {
  readonly isDisposed: boolean;
  dispose(): void;
}

/**
 * Scopes: `tidy(fn)` disposes every tensor created while fn runs, except the tensors it returns and
 * those passed to `keep`. Scopes nest; returned tensors move to the enclosing scope.
 */
interface Scope {
  tracked: Tracked[];
}

const SCOPES_KEY = Symbol.for('@diff-transformer/core/scopes');
const KEPT_KEY = Symbol.for('@diff-transformer/core/kept');
// Shared through globalThis like the registry, so an ESM and a CJS copy of core see the same scopes.
const globalStore = globalThis as unknown as Record<symbol, unknown>;
// biome-ignore lint/suspicious/noAssignInExpressions: created by whichever copy of core loads first, then shared
const scopes = (globalStore[SCOPES_KEY] ??= []) as Scope[];
// biome-ignore lint/suspicious/noAssignInExpressions: created by whichever copy of core loads first, then shared
const kept = (globalStore[KEPT_KEY] ??= new WeakSet<Tracked>()) as WeakSet<Tracked>;

/** Called by the Tensor constructor. */
export function track(tensor: Tracked): void {
  const top = scopes[scopes.length - 1];
  if (top) top.tracked.push(tensor);
}

/** Exempts a tensor from disposal by the scopes it was made in; it must then be disposed by hand. */
export function keep<T extends Tracked>(tensor: T): T {
  kept.add(tensor);
  return tensor;
}

/**
 * Runs fn and disposes every tensor created inside it, except what it returns (a tensor, or tensors
 * inside arrays and plain objects) and kept tensors. fn must be synchronous: kernels only enqueue work,
 * so a forward pass needs no await; readback (`await t.data()`) belongs outside. An async function is
 * refused before it runs, since what it made after its first await would escape every scope.
 */
export function tidy<T>(fn: () => T): T {
  if (Object.prototype.toString.call(fn) === '[object AsyncFunction]') {
    throw new ArgumentError('tidy(fn)', 'a synchronous function', 'an async function');
  }
  const scope: Scope = { tracked: [] };
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    scopes.pop();
    disposeAll(scope.tracked, new Set());
    throw error;
  }
  scopes.pop();
  if (result instanceof Promise) {
    // A plain function that returned a promise: free what it made so far, and what the promise
    // brings (or swallow its rejection, which nobody else can catch now); then refuse.
    disposeAll(scope.tracked, new Set());
    result.then(
      (value) => {
        const late = new Set<Tracked>();
        collectTensors(value, late, 0);
        disposeAll([...late], new Set());
      },
      () => {},
    );
    throw new ArgumentError('tidy(fn)', 'a synchronous function', 'a function returning a Promise');
  }
  const returned = new Set<Tracked>();
  collectTensors(result, returned, 0);
  disposeAll(scope.tracked, returned);
  // What this scope made and returns belongs to the enclosing scope now; a returned tensor made
  // outside this scope stays with whoever made it.
  const parent = scopes[scopes.length - 1];
  if (parent) {
    const mine = new Set(scope.tracked);
    for (const t of returned) if (!t.isDisposed && mine.has(t)) parent.tracked.push(t);
  }
  return result;
}

function disposeAll(tracked: Tracked[], spare: Set<Tracked>): void {
  for (const t of tracked) if (!spare.has(t) && !kept.has(t)) t.dispose();
}

function collectTensors(value: unknown, into: Set<Tracked>, depth: number): void {
  if (value === null || typeof value !== 'object' || depth > 8) return;
  if (isTensor(value)) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, into, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collectTensors(v, into, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
  }
}

function isTensor(value: object): value is Tracked {
  return (value as { [TENSOR_BRAND]?: true })[TENSOR_BRAND] === true;
}

/** Brand shared across copies of core, so a tensor from another copy is still recognised. */
export const TENSOR_BRAND = Symbol.for('@diff-transformer/core/tensor');
