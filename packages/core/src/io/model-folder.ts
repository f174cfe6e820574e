/**
 * Model folders: `config.json` plus safetensors weights (one file or shards), in one of two layouts:
 *   - native:    our own config.json ({"format": "diff-transformer", "version": 1, …ModelConfig}) and
 *                model.safetensors with parameterShapes() names, float32; written by saveModel, read back
 *                bit-exactly;
 *   - diffllama: a Hugging Face DiffLlamaForCausalLM folder (model_type "diffllama"), mapped onto the
 *                graph by ./diffllama.ts.
 * Everything is validated (config, every header, every tensor name and shape) before a tensor is read,
 * and the model is built through DiffTransformer.fromParameters, which frees what it uploaded if it fails:
 * a failed load leaves nothing behind.
 */
import { ConfigError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { resolveConfig } from '../model/config.js';
import { DiffTransformer, type ModelOptions } from '../model/model.js';
import type { HostTensor } from '../model/parameters.js';
import { parameterShapes } from '../model/parameters.js';
import { sizeOf } from '../tensor/shape.js';
import type { FolderSource } from './byte-source.js';
import {
  diffLlamaDims,
  diffLlamaModelConfig,
  diffLlamaParameterShapes,
  fromDiffLlamaParameters,
  isIgnorableDiffLlamaTensor,
  refuseDiffLlamaVariant,
  type DiffLlamaDims,
} from './diffllama.js';
import {
  CheckpointConfigError,
  CheckpointError,
  MissingTensorError,
  NonFiniteTensorError,
  TensorShapeMismatchError,
  UnexpectedTensorError,
} from './errors.js';
import { countNonFinite } from './non-finite.js';
import type { SafetensorsEntry, SafetensorsLayout } from './safetensors.js';
import { isFloatSafetensorsDType, layoutSafetensors } from './safetensors.js';
import type { TensorRole, TensorStore } from './tensor-store.js';
import { openTensorStore, SAFETENSORS_FILE } from './tensor-store.js';

export const CONFIG_FILE = 'config.json';
const NATIVE_FORMAT = 'diff-transformer';
const NATIVE_FORMAT_VERSION = 1;

export type ModelLayout = 'native' | 'diffllama';

/** How strictly a model folder is read. */
export interface LoadOptions {
  /**
   * Load parameters that hold NaN or ±Infinity instead of refusing them with NonFiniteTensorError
   * (to look at a broken checkpoint; its logits will not be finite). Default false.
   */
  readonly allowNonFinite?: boolean;
}

/** What a model folder holds, read to the host and validated, before anything is uploaded. */
export interface ModelFolderContents {
  readonly layout: ModelLayout;
  readonly config: ModelConfig;
  /** Our parameter names and layout (DiffLlama rows already permuted). */
  readonly parameters: Map<string, HostTensor>;
  /** The folder's name, for messages. */
  readonly source: string;
}

/** Reads config.json and tells which layout the folder is in. */
async function readFolderConfig(
  folder: FolderSource,
): Promise<{ layout: ModelLayout; json: Record<string, unknown>; file: string }> {
  const file = `${folder.name}/${CONFIG_FILE}`;
  if (!(await folder.exists(CONFIG_FILE))) {
    // A folder that is missing or unreadable is not "a folder without config.json": listing it says which.
    await folder.list();
    throw new CheckpointConfigError(
      file,
      null,
      'no config.json: a model folder holds config.json and model.safetensors ' +
        '(or shards with model.safetensors.index.json)',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(await folder.readText(CONFIG_FILE));
  } catch (error) {
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointConfigError(
      file,
      null,
      `not valid JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new CheckpointConfigError(file, null, 'expected a JSON object');
  const record = json as Record<string, unknown>;
  if (record.format === NATIVE_FORMAT) return { layout: 'native', json: record, file };
  if (record.model_type === 'diffllama') return { layout: 'diffllama', json: record, file };
  if (record.model_type === 'diff_llama') refuseDiffLlamaVariant(record, file);
  throw new CheckpointConfigError(
    file,
    record.model_type !== undefined ? 'model_type' : 'format',
    `unrecognised model folder: expected "format": "${NATIVE_FORMAT}" (this project's own) ` +
      `or "model_type": "diffllama" (Hugging Face), got ${
        record.model_type !== undefined ? `model_type ${JSON.stringify(record.model_type)}` : 'neither'
      }`,
  );
}

/** Our ModelConfig from a native config.json. */
function nativeModelConfig(json: Record<string, unknown>, file: string): ModelConfig {
  if (json.version !== NATIVE_FORMAT_VERSION) {
    throw new CheckpointConfigError(
      file,
      'version',
      `expected ${NATIVE_FORMAT_VERSION} (the only version this release reads), got ${JSON.stringify(json.version)}`,
    );
  }
  const { format: _format, version: _version, ...rest } = json;
  try {
    return resolveConfig(rest as unknown as ModelConfig);
  } catch (error) {
    if (error instanceof ConfigError)
      throw new CheckpointConfigError(file, error.fields[0] ?? null, error.message, { cause: error });
    throw error;
  }
}

/** The native config.json for a config. */
function nativeConfigJson(config: ModelConfig): string {
  return `${JSON.stringify({ format: NATIVE_FORMAT, version: NATIVE_FORMAT_VERSION, ...config }, null, 2)}\n`;
}

/** Checks the store's tensors against expected names and shapes (every name present, none unexpected, float dtypes). */
function checkExpected(
  store: TensorStore,
  expected: ReadonlyMap<string, number[]>,
  ignorable: (name: string) => boolean = () => false,
): void {
  for (const name of expected.keys()) {
    if (!store.tensors.has(name)) throw new MissingTensorError(store.listing, name);
  }
  for (const [name, stored] of store.tensors) {
    if (expected.has(name)) {
      const shape = expected.get(name)!;
      const actual = stored.info.shape;
      if (shape.length !== actual.length || shape.some((d, i) => d !== actual[i])) {
        throw new TensorShapeMismatchError(stored.file.name, name, shape, actual);
      }
      if (!isFloatSafetensorsDType(stored.info.dtype)) {
        throw new CheckpointError(
          'CHECKPOINT_DTYPE',
          stored.file.name,
          name,
          `is ${stored.info.dtype}; model parameters must be F64, F32, F16 or BF16`,
        );
      }
    } else if (!ignorable(name)) {
      throw new UnexpectedTensorError(stored.file.name, name);
    }
  }
}

/** Validates, then reads every expected tensor as float32; refuses non-finite values unless allowed. */
async function readExpected(
  store: TensorStore,
  expected: ReadonlyMap<string, number[]>,
  ignorable: (name: string) => boolean,
  options: LoadOptions,
): Promise<Map<string, HostTensor>> {
  checkExpected(store, expected, ignorable);
  const out = new Map<string, HostTensor>();
  const nonFinite: Array<{ file: string; tensor: string; nan: number; infinite: number; size: number }> = [];
  for (const [name, shape] of expected) {
    const stored = store.tensors.get(name)!;
    const data = await stored.file.readFloat32(name);
    if (!options.allowNonFinite) {
      const { nan, infinite } = countNonFinite(data);
      if (nan + infinite > 0)
        nonFinite.push({ file: stored.file.name, tensor: name, nan, infinite, size: data.length });
    }
    out.set(name, { shape, data });
  }
  if (nonFinite.length) throw new NonFiniteTensorError(nonFinite);
  return out;
}

/** What the plan makes of a tensor name, for the tensor store's messages. */
function roleIn(plan: { expected: ReadonlyMap<string, number[]>; ignorable: (name: string) => boolean }) {
  return (name: string): TensorRole =>
    plan.expected.has(name) ? 'needed' : plan.ignorable(name) ? 'ignorable' : 'unexpected';
}

/** The config and the tensors the folder must hold, for either layout. */
async function folderPlan(folder: FolderSource): Promise<{
  layout: ModelLayout;
  config: ModelConfig;
  dims: DiffLlamaDims | null;
  expected: Map<string, number[]>;
  ignorable: (name: string) => boolean;
}> {
  const { layout, json, file } = await readFolderConfig(folder);
  if (layout === 'native') {
    const config = nativeModelConfig(json, file);
    return { layout, config, dims: null, expected: parameterShapes(config), ignorable: () => false };
  }
  const dims = diffLlamaDims(json, file);
  const config = diffLlamaModelConfig(dims, file);
  return {
    layout,
    config,
    dims,
    expected: diffLlamaParameterShapes(dims),
    ignorable: (name) => isIgnorableDiffLlamaTensor(name, dims),
  };
}

/** What `difftx inspect` shows of a model folder: validated layout, config, and every tensor. */
export interface ModelFolderDescription {
  readonly layout: ModelLayout;
  readonly config: ModelConfig;
  readonly files: readonly string[];
  readonly tensors: ReadonlyArray<{
    name: string;
    dtype: string;
    shape: readonly number[];
    file: string;
    /** NaN and ±Infinity among its values as float32 (with `countNonFinite` only). */
    nonFinite?: { nan: number; infinite: number };
  }>;
  readonly parameterCount: number;
}

/**
 * Validates a model folder (config, headers, names, shapes). Reads no tensor data unless
 * `countNonFinite` is set: then every float tensor is read, one at a time, to count NaN and ±Infinity.
 */
export async function describeModelFolder(
  folder: FolderSource,
  options: { countNonFinite?: boolean } = {},
): Promise<ModelFolderDescription> {
  const plan = await folderPlan(folder);
  const store = await openTensorStore(folder, { roleOf: roleIn(plan) });
  try {
    checkExpected(store, plan.expected, plan.ignorable);
    const tensors = [];
    for (const t of store.tensors.values()) {
      const entry = { name: t.info.name, dtype: t.info.dtype, shape: t.info.shape, file: t.file.name };
      const counted =
        options.countNonFinite && isFloatSafetensorsDType(t.info.dtype)
          ? { nonFinite: countNonFinite(await t.file.readFloat32(t.info.name)) }
          : {};
      tensors.push({ ...entry, ...counted });
    }
    tensors.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
    const parameterCount = [...plan.expected.values()].reduce((n, shape) => n + sizeOf(shape), 0);
    return { layout: plan.layout, config: plan.config, files: store.files.map((f) => f.name), tensors, parameterCount };
  } finally {
    await store.close();
  }
}

/** Reads and validates a model folder (either layout) to the host. */
export async function readModelFolder(folder: FolderSource, options: LoadOptions = {}): Promise<ModelFolderContents> {
  const plan = await folderPlan(folder);
  const store = await openTensorStore(folder, { roleOf: roleIn(plan) });
  try {
    const tensors = await readExpected(store, plan.expected, plan.ignorable, options);
    const parameters = plan.layout === 'native' ? tensors : fromDiffLlamaParameters(plan.dims!, plan.config, tensors);
    return { layout: plan.layout, config: plan.config, parameters, source: folder.name };
  } finally {
    await store.close();
  }
}

/** Loads a model folder (native or DiffLlama) onto a backend (default: the active one). */
export async function loadModelFromFolder(
  folder: FolderSource,
  options: ModelOptions & LoadOptions = {},
): Promise<DiffTransformer> {
  const { allowNonFinite, ...modelOptions } = options;
  const contents = await readModelFolder(folder, { allowNonFinite });
  return DiffTransformer.fromParameters(contents.config, contents.parameters, {
    ...modelOptions,
    source: contents.source,
  });
}

/** The files of a native model folder: config.json text and the model.safetensors layout (float32). */
export async function nativeModelFiles(
  model: DiffTransformer,
): Promise<{ config: string; weights: SafetensorsLayout }> {
  const parameters = await model.hostParameters();
  const entries: Array<[string, SafetensorsEntry]> = [];
  for (const name of parameterShapes(model.config).keys()) {
    const p = parameters.get(name)!;
    entries.push([name, { shape: p.shape, data: p.data, dtype: 'F32' }]);
  }
  return {
    config: nativeConfigJson(model.config),
    weights: layoutSafetensors(
      entries,
      { format: NATIVE_FORMAT, version: String(NATIVE_FORMAT_VERSION) },
      SAFETENSORS_FILE,
    ),
  };
}
