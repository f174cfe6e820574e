/**
 * The engine: a module Web Worker that owns the backends and the models. Kernels, loading, generation
 * and training run here, so the page stays responsive; the CPU backend's own threads start from here
 * (nested workers), and WebGPU is reached through the worker's navigator.gpu.
 */
import {
  ByteTokenizer,
  DiffTransformer,
  type FolderSource,
  generate,
  type HostTensor,
  listBackends,
  memoryFolder,
  nativeModelFiles,
  parameterCount,
  readModelFolder,
  setBackend,
  type Tokenizer,
} from '@diff-transformer/core';
import '@diff-transformer/backend-webgpu';
import '@diff-transformer/backend-cpu';
import { snapshotDownload, tokenizerFromFolder } from '@diff-transformer/hub';
import { workerScope } from '../worker-scope.js';
import { blobFolder } from './blob-folder.js';
import type {
  BackendsState,
  EncodedPrompt,
  EngineEvent,
  EngineMethods,
  GenerateRequest,
  GenerateResult,
  HostParameters,
  Method,
  ModelSummary,
  Request,
  Response,
  SavedFolder,
  Slot,
} from './protocol.js';
import { SLOTS } from './protocol.js';
import { discardRun, trainPair } from './train.js';

interface Loaded {
  model: DiffTransformer;
  source: string;
  layout: 'native' | 'diffllama';
  tokenizer: Tokenizer | null;
  tokenizerKind: ModelSummary['tokenizer'];
  version: number;
}

const models = new Map<Slot, Loaded>();
let active: string | null = null;
let versions = 0;
/** Set by `stop`; generation and training check it between steps. */
let stopRequested = false;

const scope = workerScope;

function post(response: Response): void {
  scope.postMessage(response);
}

/** Lets queued messages (a `stop`) in between steps of a long computation. */
function yieldToMessages(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

async function backendsState(): Promise<BackendsState> {
  return { backends: await listBackends(), active };
}

async function ensureBackend(): Promise<string> {
  if (active) return active;
  // WebGPU where the browser has it, else the CPU: the first available in the registry's order.
  for (const info of await listBackends()) {
    if (!info.available) continue;
    await setBackend(info.name);
    active = info.name;
    return active;
  }
  throw new Error('no backend is available in this browser: neither WebGPU nor the CPU backend initialised');
}

/** Moves every loaded model onto `name` (model.to: parameters read back once, uploaded to the new backend). */
async function switchBackend(name: string): Promise<BackendsState> {
  const backend = await setBackend(name);
  if (name !== active) {
    // A stopped training run's optimiser state lives on the old backend: the trained models move, the run ends.
    discardRun();
    for (const [slot, loaded] of models) {
      const moved = await loaded.model.to(backend);
      loaded.model.dispose();
      models.set(slot, { ...loaded, model: moved });
    }
    active = name;
  }
  return backendsState();
}

async function summary(slot: Slot, loaded: Loaded): Promise<ModelSummary> {
  const lambdas = loaded.model.config.attention === 'differential' ? await loaded.model.lambdaValues() : [];
  return {
    slot,
    source: loaded.source,
    layout: loaded.layout,
    config: loaded.model.config,
    parameterCount: parameterCount(loaded.model.config),
    tokenizer: loaded.tokenizerKind,
    lambdas,
    version: loaded.version,
  };
}

async function readTokenizer(
  folder: FolderSource,
  vocabSize: number,
): Promise<{ tokenizer: Tokenizer | null; kind: ModelSummary['tokenizer'] }> {
  const tokenizer = await tokenizerFromFolder(folder);
  if (tokenizer) return { tokenizer, kind: 'tokenizer.json' };
  if (vocabSize === 256) return { tokenizer: new ByteTokenizer(), kind: 'bytes' };
  return { tokenizer: null, kind: 'none' };
}

/** Reads and validates a folder, then uploads it; the slot is chosen by its attention (baseline or DIFF). */
async function loadInto(folder: FolderSource, source: string, slot?: Slot): Promise<ModelSummary> {
  await ensureBackend();
  const contents = await readModelFolder(folder);
  const { tokenizer, kind } = await readTokenizer(folder, contents.config.vocabSize);
  const model = DiffTransformer.fromParameters(contents.config, contents.parameters, { source: contents.source });
  const target = slot ?? (contents.config.attention === 'standard' ? 'baseline' : 'diff');
  models.get(target)?.model.dispose();
  const loaded: Loaded = {
    model,
    source,
    layout: contents.layout,
    tokenizer,
    tokenizerKind: kind,
    version: ++versions,
  };
  models.set(target, loaded);
  return summary(target, loaded);
}

async function fetchFolder(url: string, name: string): Promise<FolderSource> {
  const files = new Map<string, Uint8Array>();
  for (const file of ['config.json', 'model.safetensors']) {
    const response = await fetch(new URL(file, url));
    if (!response.ok) throw new Error(`${name}/${file}: the server answered ${response.status} ${response.statusText}`);
    files.set(file, new Uint8Array(await response.arrayBuffer()));
  }
  return memoryFolder(files, name);
}

function modelIn(slot: Slot): Loaded {
  const loaded = models.get(slot);
  if (!loaded) throw new Error(`no ${slot === 'diff' ? 'DIFF' : 'baseline'} model is loaded: load one first`);
  return loaded;
}

function encodeWith(loaded: Loaded, text: string): EncodedPrompt {
  if (!loaded.tokenizer) {
    throw new Error(
      `${loaded.source} has no tokenizer.json and its vocabulary is ${loaded.model.config.vocabSize}, ` +
        'not 256 (bytes): add its tokenizer.json to the folder',
    );
  }
  const ids = loaded.tokenizer.encode(text);
  if (ids.length === 0) throw new Error('the prompt encodes to no tokens: type some text');
  const vocab = loaded.model.config.vocabSize;
  const outside = ids.find((id) => id >= vocab);
  if (outside !== undefined)
    throw new Error(`the tokenizer gave id ${outside}, outside the model's vocabulary of ${vocab}`);
  return { ids, tokens: ids.map((id) => decodeOne(loaded.tokenizer!, id)) };
}

function decodeOne(tokenizer: Tokenizer, id: number): string {
  try {
    return tokenizer.decode([id]);
  } catch {
    return `#${id}`;
  }
}

async function runGenerate(request: GenerateRequest, emit: (event: EngineEvent) => void): Promise<GenerateResult> {
  const loaded = modelIn(request.slot);
  const { ids: promptIds } = encodeWith(loaded, request.prompt);
  const tokenizer = loaded.tokenizer!;
  const ids: number[] = [];
  let text = '';
  stopRequested = false;
  const started = performance.now();
  for await (const id of generate(loaded.model, promptIds, {
    maxNewTokens: request.maxNewTokens,
    seed: request.seed,
    ...request.sampling,
  })) {
    ids.push(id);
    // Decode everything so far and send what is new: multi-byte characters settle with their last token.
    const decoded = tokenizer.decode(ids);
    const delta = decoded.startsWith(text) && !decoded.endsWith('\uFFFD') ? decoded.slice(text.length) : '';
    if (delta) text = decoded;
    emit({ kind: 'token', id, text: delta, tokensPerSecond: ids.length / ((performance.now() - started) / 1000) });
    await yieldToMessages();
    if (stopRequested) break;
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    promptIds,
    ids,
    text: tokenizer.decode(ids),
    tokensPerSecond: ids.length / seconds,
    stopped: stopRequested,
  };
}

/** Every parameter read back from the device once; the maps worker computes from these. */
async function hostParameters(slot: Slot): Promise<HostParameters> {
  const loaded = modelIn(slot);
  const host: Map<string, HostTensor> = await loaded.model.hostParameters();
  return {
    version: loaded.version,
    config: loaded.model.config,
    parameters: [...host].map(([name, p]) => ({ name, shape: [...p.shape], data: p.data as Float32Array })),
  };
}

async function save(slot: Slot): Promise<SavedFolder> {
  const files = await nativeModelFiles(modelIn(slot).model);
  const weights = new Uint8Array(files.weights.totalBytes);
  weights.set(files.weights.header, 0);
  let at = files.weights.header.length;
  for (const t of files.weights.tensors) {
    weights.set(t.bytes(), at);
    at += t.byteLength;
  }
  return {
    slot,
    files: [
      { name: 'config.json', bytes: new TextEncoder().encode(files.config) },
      { name: 'model.safetensors', bytes: weights },
    ],
  };
}

type Handler<M extends Method> = (
  args: EngineMethods[M]['args'],
  emit: (event: EngineEvent) => void,
) => Promise<EngineMethods[M]['result']>;

const handlers: { [M in Method]: Handler<M> } = {
  backends: () => backendsState(),
  setBackend: ({ name }) => switchBackend(name),
  async loadBuiltin({ baseUrl }) {
    const out: ModelSummary[] = [];
    for (const slot of SLOTS) {
      const folder = await fetchFolder(new URL(`${slot}/`, baseUrl).href, `built-in ${slot}`);
      out.push(await loadInto(folder, 'built-in', slot));
    }
    return out;
  },
  loadFolder: ({ name, files }) => loadInto(blobFolder(name, files), name),
  async loadHub({ model, endpoint }, emit) {
    const snapshot = await snapshotDownload(model, {
      endpoint,
      progress: (p) => emit({ kind: 'progress', label: p.file, done: p.modelLoaded, total: p.modelTotal }),
    });
    return loadInto(snapshot.folder, `hf:${snapshot.repo}@${snapshot.revision}`);
  },
  models: async () => Promise.all([...models].map(([slot, loaded]) => summary(slot, loaded))),
  encode: async ({ slot, text }) => encodeWith(modelIn(slot), text),
  generate: (request, emit) => runGenerate(request, emit),
  async stop() {
    stopRequested = true;
    return null;
  },
  parameters: ({ slot }) => hostParameters(slot),
  async train({ resume, ...request }, emit) {
    await ensureBackend();
    stopRequested = false;
    return trainPair(request, resume, {
      replace(slot, model) {
        const previous = models.get(slot);
        if (previous && previous.model !== model) previous.model.dispose();
        models.set(slot, {
          model,
          source: 'trained in the page',
          layout: 'native',
          tokenizer: new ByteTokenizer(),
          tokenizerKind: 'bytes',
          version: ++versions,
        });
      },
      stopRequested: () => stopRequested,
      yieldToMessages,
      emit,
    });
  },
  save: ({ slot }) => save(slot),
};

/** Calls that change or use the models for long: one at a time (the page disables their controls meanwhile). */
const EXCLUSIVE: ReadonlySet<Method> = new Set([
  'setBackend',
  'loadBuiltin',
  'loadFolder',
  'loadHub',
  'generate',
  'train',
]);
let running: Method | null = null;

scope.onmessage = async (message: MessageEvent<Request>) => {
  const { id, method, args } = message.data;
  const emit = (event: EngineEvent) => post({ id, type: 'event', event });
  const exclusive = EXCLUSIVE.has(method);
  let owns = false;
  try {
    if (exclusive && running) throw new Error(`busy: '${running}' is still running; stop it or wait for it first`);
    if (exclusive) {
      running = method;
      owns = true;
    }
    const handler = handlers[method] as Handler<Method>;
    const result = await handler(args as never, emit);
    const transfer: Transferable[] = [];
    if (method === 'parameters') for (const p of (result as HostParameters).parameters) transfer.push(p.data.buffer);
    scope.postMessage({ id, type: 'result', result } satisfies Response, transfer);
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    post({ id, type: 'error', error: { name: e.name, message: e.message } });
  } finally {
    if (owns) running = null;
  }
};
