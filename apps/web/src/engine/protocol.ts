/**
 * Messages between the page and the engine worker, which owns the backends, the models and every long
 * computation on them (loading, generation, training), so the page never waits on a kernel.
 */
import type { BackendInfo, ModelConfig, SamplingOptions } from '@diff-transformer/core';

/** The two models the page compares: a DIFF Transformer and its baseline. */
export type Slot = 'diff' | 'baseline';
export const SLOTS: readonly Slot[] = ['diff', 'baseline'];

export interface ModelSummary {
  readonly slot: Slot;
  /** Where it came from: 'built-in', a folder's name, or 'trained in the page'. */
  readonly source: string;
  readonly layout: 'native' | 'diffllama';
  readonly config: ModelConfig;
  readonly parameterCount: number;
  readonly tokenizer: 'bytes' | 'tokenizer.json' | 'none';
  /** λ per layer (DIFF V1), read back from the device. */
  readonly lambdas: readonly number[];
  /** Bumped whenever the parameters change (load, training step), so cached maps can be dropped. */
  readonly version: number;
}

export interface BackendsState {
  readonly backends: readonly BackendInfo[];
  /** The backend the models live on, or null before one was chosen. */
  readonly active: string | null;
}

/** A file the user picked or dropped, of a model folder, handed to the worker (a File keeps its bytes out of the page's heap). */
export interface PickedFile {
  readonly name: string;
  readonly file: Blob;
}

export interface GenerateRequest {
  readonly slot: Slot;
  readonly prompt: string;
  readonly maxNewTokens: number;
  readonly seed: number;
  readonly sampling: SamplingOptions;
}

export interface GenerateResult {
  readonly promptIds: number[];
  readonly ids: number[];
  readonly text: string;
  readonly tokensPerSecond: number;
  readonly stopped: boolean;
}

export interface EncodedPrompt {
  readonly ids: number[];
  /** Each token on its own, for axis labels and hover text. */
  readonly tokens: string[];
}

export interface HostParameters {
  readonly version: number;
  readonly config: ModelConfig;
  readonly parameters: Array<{ name: string; shape: number[]; data: Float32Array }>;
}

export interface TrainRequest {
  readonly text: string;
  readonly steps: number;
  readonly learningRate: number;
  readonly sequenceLength: number;
  readonly batchSize: number;
  readonly seed: number;
}

export interface TrainProgress {
  readonly step: number;
  readonly steps: number;
  readonly loss: Record<Slot, number>;
}

export interface TrainResult {
  readonly step: number;
  readonly steps: number;
  readonly stopped: boolean;
  readonly losses: ReadonlyArray<{ step: number; diff: number; baseline: number }>;
}

export interface SavedFolder {
  readonly slot: Slot;
  readonly files: ReadonlyArray<{ name: string; bytes: Uint8Array }>;
}

/** What the page may ask; each method's argument and result. */
export interface EngineMethods {
  backends: { args: Record<string, never>; result: BackendsState };
  setBackend: { args: { name: string }; result: BackendsState };
  loadBuiltin: { args: { baseUrl: string }; result: ModelSummary[] };
  loadFolder: { args: { name: string; files: PickedFile[] }; result: ModelSummary };
  /** `owner/name[@revision]` from the Hugging Face Hub (or a mirror at `endpoint`), through the Cache API. */
  loadHub: { args: { model: string; endpoint?: string }; result: ModelSummary };
  models: { args: Record<string, never>; result: ModelSummary[] };
  encode: { args: { slot: Slot; text: string }; result: EncodedPrompt };
  generate: { args: GenerateRequest; result: GenerateResult };
  stop: { args: Record<string, never>; result: null };
  parameters: { args: { slot: Slot }; result: HostParameters };
  /** Starts a new run, or with `resume` continues the stopped one. */
  train: { args: TrainRequest & { resume: boolean }; result: TrainResult };
  save: { args: { slot: Slot }; result: SavedFolder };
}
export type Method = keyof EngineMethods;

export interface Request<M extends Method = Method> {
  readonly id: number;
  readonly method: M;
  readonly args: EngineMethods[M]['args'];
}

/** Events a running call streams before its result. */
export type EngineEvent =
  | { readonly kind: 'token'; readonly id: number; readonly text: string; readonly tokensPerSecond: number }
  | { readonly kind: 'progress'; readonly label: string; readonly done: number; readonly total: number }
  | { readonly kind: 'train'; readonly progress: TrainProgress };

export type Response =
  | { readonly id: number; readonly type: 'result'; readonly result: unknown }
  | { readonly id: number; readonly type: 'error'; readonly error: { name: string; message: string } }
  | { readonly id: number; readonly type: 'event'; readonly event: EngineEvent };
