/**
 * The page: controls and views. Every computation happens in two workers: the engine (backends,
 * models, generation, training) and the maps worker (float64 reference attention maps).
 */
import './style.css';
import type { BackendInfo, SamplingOptions } from '@diff-transformer/core';
import { zipSync } from 'fflate';
import { EngineClient } from './engine/client.js';
import type { BackendsState, PickedFile, GenerateResult, ModelSummary, Slot } from './engine/protocol.js';
import { MapsClient } from './maps/client.js';
import type { ModelMaps } from './maps/protocol.js';
import { Heatmap } from './ui/heatmap.js';
import { LossChart } from './ui/loss-chart.js';
import { NEEDLE_PROMPT, TRAINING_TEXT } from './ui/examples.js';

/** Longest prompt whose maps are computed (each map is T×T per head, in float64). */
const MAX_MAP_TOKENS = 160;

/** What the page shows, kept readable for tests and the curious (window.difftx.state). */
export interface PageState {
  ready: boolean;
  backends: BackendsState | null;
  models: Partial<Record<Slot, ModelSummary>>;
  generation: GenerateResult | null;
  attention: { prompt: string; ids: number[]; tokens: string[]; maps: Partial<Record<Slot, ModelMaps>> } | null;
  losses: Array<{ step: number; diff: number; baseline: number }>;
  error: string | null;
  busy: string | null;
}

const state: PageState = {
  ready: false,
  backends: null,
  models: {},
  generation: null,
  attention: null,
  losses: [],
  error: null,
  busy: null,
};
(window as unknown as { difftx: { state: PageState } }).difftx = { state };

const engine = new EngineClient();
const mapsWorker = new MapsClient();

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const ui = {
  error: element<HTMLDivElement>('error'),
  backend: element<HTMLSelectElement>('backend'),
  backendDevice: element<HTMLParagraphElement>('backend-device'),
  backendReasons: element<HTMLUListElement>('backend-reasons'),
  loadBuiltin: element<HTMLButtonElement>('load-builtin'),
  folderInput: element<HTMLInputElement>('folder-input'),
  filesInput: element<HTMLInputElement>('files-input'),
  dropZone: element<HTMLButtonElement>('drop-zone'),
  hubForm: element<HTMLFormElement>('hub-form'),
  hubModel: element<HTMLInputElement>('hub-model'),
  loadHub: element<HTMLButtonElement>('load-hub'),
  hubStatus: element<HTMLSpanElement>('hub-status'),
  modelProgress: element<HTMLProgressElement>('model-progress'),
  modelCards: element<HTMLDivElement>('model-cards'),
  generateForm: element<HTMLFormElement>('generate-form'),
  generatePrompt: element<HTMLTextAreaElement>('generate-prompt'),
  generateSlot: element<HTMLSelectElement>('generate-slot'),
  maxNewTokens: element<HTMLInputElement>('max-new-tokens'),
  greedy: element<HTMLInputElement>('greedy'),
  temperature: element<HTMLInputElement>('temperature'),
  topK: element<HTMLInputElement>('top-k'),
  topP: element<HTMLInputElement>('top-p'),
  seed: element<HTMLInputElement>('seed'),
  generateButton: element<HTMLButtonElement>('generate-button'),
  generateStop: element<HTMLButtonElement>('generate-stop'),
  generateRate: element<HTMLSpanElement>('generate-rate'),
  generateOutput: element<HTMLOutputElement>('generate-output'),
  attentionForm: element<HTMLFormElement>('attention-form'),
  attentionPrompt: element<HTMLTextAreaElement>('attention-prompt'),
  needle: element<HTMLButtonElement>('needle-example'),
  attentionButton: element<HTMLButtonElement>('attention-button'),
  attentionProgress: element<HTMLProgressElement>('attention-progress'),
  attentionStatus: element<HTMLParagraphElement>('attention-status'),
  attentionLayer: element<HTMLSelectElement>('attention-layer'),
  attentionHead: element<HTMLSelectElement>('attention-head'),
  attentionBaselineHead: element<HTMLSelectElement>('attention-baseline-head'),
  lambdaBody: element<HTMLTableElement>('lambda-table').tBodies[0],
  maps: element<HTMLDivElement>('maps'),
  trainForm: element<HTMLFormElement>('train-form'),
  trainText: element<HTMLTextAreaElement>('train-text'),
  trainSteps: element<HTMLInputElement>('train-steps'),
  trainLr: element<HTMLInputElement>('train-lr'),
  trainSeq: element<HTMLInputElement>('train-seq'),
  trainBatch: element<HTMLInputElement>('train-batch'),
  trainStart: element<HTMLButtonElement>('train-start'),
  trainStop: element<HTMLButtonElement>('train-stop'),
  trainResume: element<HTMLButtonElement>('train-resume'),
  trainProgress: element<HTMLProgressElement>('train-progress'),
  trainStatus: element<HTMLSpanElement>('train-status'),
  saveDiff: element<HTMLButtonElement>('save-diff'),
  saveBaseline: element<HTMLButtonElement>('save-baseline'),
};

const heatmaps = {
  map1: new Heatmap('DIFF: map 1 = softmax(Q1·K1ᵀ/√d)', 'map-1'),
  map2: new Heatmap('DIFF: map 2 = softmax(Q2·K2ᵀ/√d)', 'map-2'),
  differential: new Heatmap('DIFF: map 1 − λ·map 2', 'map-differential'),
  baseline: new Heatmap('Baseline: softmax(Q·Kᵀ/√d)', 'map-baseline'),
};
ui.maps.append(...Object.values(heatmaps).map((h) => h.element));
const lossChart = new LossChart(element('loss-chart'));

ui.attentionPrompt.value = NEEDLE_PROMPT;
ui.trainText.value = TRAINING_TEXT;

// ---------------------------------------------------------------------------------------------
// Errors and busy state
// ---------------------------------------------------------------------------------------------

function showError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  state.error = message;
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError(): void {
  state.error = null;
  ui.error.hidden = true;
  ui.error.textContent = '';
}

/** Controls that start a long call on the engine; disabled while one runs (the engine takes one at a time). */
const EXCLUSIVE_CONTROLS = () => [
  ui.backend,
  ui.loadBuiltin,
  ui.loadHub,
  ui.dropZone,
  ui.folderInput,
  ui.filesInput,
  ui.generateButton,
  ui.attentionButton,
  ui.trainStart,
  ui.trainResume,
  ui.saveDiff,
  ui.saveBaseline,
];

function refreshControls(): void {
  const busy = state.busy !== null;
  for (const control of EXCLUSIVE_CONTROLS()) control.disabled = busy;
  const hasBackend = state.backends?.backends.some((b) => b.available) ?? false;
  if (!hasBackend) ui.backend.disabled = true;
  ui.generateStop.disabled = state.busy !== 'generate';
  ui.trainStop.disabled = state.busy !== 'train';
  if (!busy) {
    ui.trainResume.disabled = !trainResumable;
    ui.saveDiff.disabled = !state.models.diff;
    ui.saveBaseline.disabled = !state.models.baseline;
  }
}

/** Runs a long action with the controls disabled; its error goes to the alert region, the page keeps working. */
async function run(label: string, action: () => Promise<void>): Promise<void> {
  if (state.busy) return;
  state.busy = label;
  refreshControls();
  clearError();
  try {
    await action();
  } catch (error) {
    showError(error);
  } finally {
    state.busy = null;
    refreshControls();
  }
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

function describe(info: BackendInfo): string {
  return info.name === 'webgpu' ? 'WebGPU' : info.name === 'cpu' ? 'CPU (WebAssembly)' : info.name;
}

function renderBackends(backends: BackendsState): void {
  state.backends = backends;
  ui.backend.replaceChildren(
    ...backends.backends.map((info) => {
      const option = document.createElement('option');
      option.value = info.name;
      option.disabled = !info.available;
      option.textContent = `${describe(info)}${info.available ? '' : ' (unavailable)'}`;
      option.selected = info.name === backends.active;
      return option;
    }),
  );
  const active = backends.backends.find((b) => b.name === backends.active);
  ui.backendDevice.textContent = active ? `Running on ${active.device}` : 'No backend chosen yet.';
  ui.backendReasons.replaceChildren(
    ...backends.backends
      .filter((b) => !b.available)
      .map((b) => {
        const item = document.createElement('li');
        item.textContent = `${describe(b)} is unavailable: ${b.reason}`;
        return item;
      }),
  );
}

ui.backend.addEventListener('change', () => {
  const name = ui.backend.value;
  void run('setBackend', async () => {
    ui.backendDevice.textContent = `Moving the models to ${name}…`;
    try {
      renderBackends(await engine.call('setBackend', { name }));
      trainResumable = false;
      await refreshModels();
    } catch (error) {
      if (state.backends) renderBackends(state.backends);
      throw error;
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

function renderModels(): void {
  ui.modelCards.replaceChildren(
    ...(['diff', 'baseline'] as const).map((slot) => {
      const card = document.createElement('article');
      card.className = 'card';
      card.id = `model-${slot}`;
      const title = document.createElement('h3');
      title.textContent = slot === 'diff' ? 'DIFF Transformer' : 'Baseline Transformer';
      const body = document.createElement('p');
      const model = state.models[slot];
      if (!model) {
        body.textContent = 'Not loaded.';
      } else {
        const c = model.config;
        const heads =
          c.attention === 'differential'
            ? `${c.numHeads} differential heads of 2×${c.headDim}`
            : `${c.numHeads} heads of ${c.headDim}`;
        body.textContent =
          `${model.source} (${model.layout}): ${c.attention}, ${formatCount(model.parameterCount)} parameters, ` +
          `${c.numLayers} layers, width ${c.hiddenSize}, ${heads}, vocabulary ${c.vocabSize} ` +
          `(${model.tokenizer === 'bytes' ? 'UTF-8 bytes' : model.tokenizer})` +
          (model.lambdas.length ? `; λ per layer ${model.lambdas.map((l) => l.toFixed(3)).join(', ')}` : '');
      }
      card.append(title, body);
      return card;
    }),
  );
  renderLambdas();
}

function renderLambdas(): void {
  const diff = state.models.diff;
  ui.lambdaBody.replaceChildren(
    ...(diff?.lambdas ?? []).map((lambda, layer) => {
      const row = document.createElement('tr');
      for (const text of [String(layer), lambda.toFixed(4), (0.8 - 0.6 * Math.exp(-0.3 * layer)).toFixed(4)]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }),
  );
}

async function refreshModels(): Promise<void> {
  const summaries = await engine.call('models', {});
  state.models = {};
  for (const summary of summaries) state.models[summary.slot] = summary;
  renderModels();
  // Maps of models that have since changed (loaded, trained) would mislead: drop them.
  const maps = state.attention?.maps;
  if (maps && Object.values(maps).some((m) => m.version !== state.models[m.slot]?.version)) {
    state.attention = null;
    renderMaps();
    ui.attentionStatus.textContent = 'The models changed: press “Show attention” to see their maps.';
  }
}

async function withProgress<T>(progress: HTMLProgressElement, action: () => Promise<T>): Promise<T> {
  progress.hidden = false;
  progress.removeAttribute('value');
  try {
    return await action();
  } finally {
    progress.hidden = true;
  }
}

async function loadBuiltin(): Promise<void> {
  await withProgress(ui.modelProgress, () =>
    engine.call('loadBuiltin', { baseUrl: new URL('models/', document.baseURI).href }),
  );
  await refreshModels();
}

async function loadFiles(name: string, files: PickedFile[]): Promise<void> {
  if (files.length === 0) throw new Error('no files were chosen: pick a model folder, or its config.json and weights');
  await withProgress(ui.modelProgress, () => engine.call('loadFolder', { name, files }));
  await refreshModels();
}

ui.loadBuiltin.addEventListener('click', () => void run('loadBuiltin', loadBuiltin));

/** The address's parameters: ?model=owner/name opens a Hub model at start; ?endpoint=URL is a Hub mirror. */
const params = new URLSearchParams(location.search);

/** 2_780_000_000 → "2.78 GB". */
function formatBytes(n: number): string {
  return n >= 1e9
    ? `${(n / 1e9).toFixed(2)} GB`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(1)} MB`
      : `${(n / 1e3).toFixed(1)} kB`;
}

async function loadHub(text: string): Promise<void> {
  const model = text.trim();
  if (!model) throw new Error('type a model as owner/name: a DiffLlama repository on the Hugging Face Hub');
  ui.modelProgress.hidden = false;
  ui.modelProgress.removeAttribute('value');
  try {
    await engine.call('loadHub', { model, endpoint: params.get('endpoint') ?? undefined }, (event) => {
      if (event.kind !== 'progress') return;
      ui.modelProgress.max = Math.max(1, event.total);
      ui.modelProgress.value = event.done;
      ui.hubStatus.textContent = `${event.label}: ${formatBytes(event.done)} of ${formatBytes(event.total)}`;
    });
    ui.hubStatus.textContent = `${model}: loaded (cached in this browser for next time)`;
  } catch (error) {
    ui.hubStatus.textContent = '';
    throw error;
  } finally {
    ui.modelProgress.hidden = true;
  }
  await refreshModels();
}

ui.hubForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void run('loadHub', () => loadHub(ui.hubModel.value));
});

function pickedFiles(list: FileList): { name: string; files: PickedFile[] } {
  const files = [...list].map((file) => ({ name: file.webkitRelativePath || file.name, file }));
  const folder = files[0]?.name.includes('/') ? files[0].name.split('/')[0] : 'chosen files';
  return { name: folder, files };
}

for (const input of [ui.folderInput, ui.filesInput]) {
  input.addEventListener('change', () => {
    if (!input.files?.length) return;
    const { name, files } = pickedFiles(input.files);
    input.value = '';
    void run('loadFolder', () => loadFiles(name, files));
  });
}

/** Every file under a dropped entry (a folder is read one level deep, as a model folder is flat). */
async function droppedFiles(items: DataTransferItemList): Promise<{ name: string; files: PickedFile[] }> {
  const entries = [...items].map((item) => item.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  const fileOf = (entry: FileSystemFileEntry) => new Promise<File>((resolve, reject) => entry.file(resolve, reject));
  const files: PickedFile[] = [];
  let name = 'dropped files';
  for (const entry of entries) {
    if (entry.isDirectory) {
      name = entry.name;
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      const children = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
      for (const child of children)
        if (child.isFile) files.push({ name: child.name, file: await fileOf(child as FileSystemFileEntry) });
    } else if (entry.isFile) {
      files.push({ name: entry.name, file: await fileOf(entry as FileSystemFileEntry) });
    }
  }
  return { name, files };
}

ui.dropZone.addEventListener('dragover', (event) => {
  event.preventDefault();
  ui.dropZone.classList.add('over');
});
ui.dropZone.addEventListener('dragleave', () => ui.dropZone.classList.remove('over'));
ui.dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  ui.dropZone.classList.remove('over');
  const items = event.dataTransfer?.items;
  if (!items) return;
  void run('loadFolder', async () => {
    const { name, files } = await droppedFiles(items);
    await loadFiles(name, files);
  });
});
// The drop zone is a button too: a click or Enter opens the folder picker.
ui.dropZone.addEventListener('click', () => ui.folderInput.click());

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

function samplingOptions(): SamplingOptions {
  if (ui.greedy.checked) return { greedy: true };
  return {
    temperature: Number(ui.temperature.value),
    topK: Number(ui.topK.value),
    topP: Number(ui.topP.value),
  };
}

ui.greedy.addEventListener('change', () => {
  for (const input of [ui.temperature, ui.topK, ui.topP]) input.disabled = ui.greedy.checked;
});

ui.generateForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void run('generate', async () => {
    const prompt = ui.generatePrompt.value;
    ui.generateOutput.replaceChildren();
    const promptSpan = document.createElement('span');
    promptSpan.className = 'prompt';
    promptSpan.textContent = prompt;
    const generated = document.createElement('span');
    ui.generateOutput.append(promptSpan, generated);
    ui.generateRate.textContent = '';
    state.generation = null;
    const result = await engine.call(
      'generate',
      {
        slot: ui.generateSlot.value as Slot,
        prompt,
        maxNewTokens: Number(ui.maxNewTokens.value),
        seed: Number(ui.seed.value),
        sampling: samplingOptions(),
      },
      (event) => {
        if (event.kind !== 'token') return;
        generated.textContent += event.text;
        ui.generateRate.textContent = `${event.tokensPerSecond.toFixed(1)} tokens/s`;
      },
    );
    generated.textContent = result.text;
    state.generation = result;
    ui.generateRate.textContent =
      `${result.ids.length} tokens at ${result.tokensPerSecond.toFixed(1)} tokens/s` +
      (result.stopped ? ' (stopped)' : '');
  });
});

ui.generateStop.addEventListener('click', () => void engine.call('stop', {}));

// ---------------------------------------------------------------------------------------------
// Attention maps
// ---------------------------------------------------------------------------------------------

function renderMaps(): void {
  const attention = state.attention;
  const layer = Number(ui.attentionLayer.value || 0);
  const head = Number(ui.attentionHead.value || 0);
  const diff = attention?.maps.diff?.layers[layer]?.heads[head];
  const baselineMaps = attention?.maps.baseline;
  const size = attention?.ids.length ?? 0;
  const tokens = attention?.tokens ?? [];
  // The baseline's own head at the same layer (a matched baseline has twice the heads, each half as wide).
  const baseLayer = baselineMaps?.layers[Math.min(layer, baselineMaps.layers.length - 1)];
  const baseHead = baseLayer?.heads[Number(ui.attentionBaselineHead.value || 0)];
  // The softmax maps share one colour range, so their magnitudes compare at a glance.
  let range = 0;
  for (const values of [
    diff?.kind === 'differential' ? [diff.map1, diff.map2] : [],
    baseHead?.kind === 'softmax' ? [baseHead.map] : [],
  ].flat()) {
    for (const v of values) range = Math.max(range, v);
  }
  if (diff?.kind === 'differential') {
    heatmaps.map1.show({ values: diff.map1, size, tokens, scale: 'sequential' }, range);
    heatmaps.map2.show({ values: diff.map2, size, tokens, scale: 'sequential' }, range);
    heatmaps.differential.show({ values: diff.differential, size, tokens, scale: 'diverging' });
  } else {
    heatmaps.map1.show(null);
    heatmaps.map2.show(null);
    heatmaps.differential.show(null);
  }
  heatmaps.baseline.show(
    baseHead?.kind === 'softmax' ? { values: baseHead.map, size, tokens, scale: 'sequential' } : null,
    range,
  );
}

function fillSelect(select: HTMLSelectElement, count: number, label: (i: number) => string): void {
  const previous = Number(select.value || 0);
  select.replaceChildren(
    ...Array.from({ length: count }, (_, i) => {
      const option = document.createElement('option');
      option.value = String(i);
      option.textContent = label(i);
      return option;
    }),
  );
  select.value = String(Math.min(previous, Math.max(0, count - 1)));
}

async function computeMaps(): Promise<void> {
  const prompt = ui.attentionPrompt.value;
  const slots = (['diff', 'baseline'] as const).filter((slot) => state.models[slot]);
  if (slots.length === 0) throw new Error('no model is loaded: load the built-in pair or a model folder first');
  await withProgress(ui.attentionProgress, async () => {
    const encoded = await engine.call('encode', { slot: slots[0], text: prompt });
    if (encoded.ids.length > MAX_MAP_TOKENS) {
      throw new Error(
        `the prompt is ${encoded.ids.length} tokens; maps are computed for up to ${MAX_MAP_TOKENS} (each is a full ` +
          'T×T matrix per head in float64): shorten it',
      );
    }
    const maps: Partial<Record<Slot, ModelMaps>> = {};
    for (const slot of slots) {
      const summary = state.models[slot]!;
      // The baseline may tokenize differently (a loaded folder); its maps use its own ids.
      const ids = slot === slots[0] ? encoded.ids : (await engine.call('encode', { slot, text: prompt })).ids;
      if (ids.length !== encoded.ids.length) continue;
      if (!mapsWorker.holds(slot, summary.version)) {
        await mapsWorker.setParameters(slot, await engine.call('parameters', { slot }));
      }
      maps[slot] = await mapsWorker.maps(slot, summary.version, ids);
    }
    state.attention = { prompt, ids: encoded.ids, tokens: encoded.tokens, maps };
  });
  ui.attentionStatus.textContent = `${state.attention?.ids.length} tokens.`;
  const { diff, baseline } = state.attention?.maps ?? {};
  fillSelect(ui.attentionLayer, Math.max(diff?.layers.length ?? 0, baseline?.layers.length ?? 0), (i) => `layer ${i}`);
  fillSelect(ui.attentionHead, diff?.layers[0]?.heads.length ?? 0, (i) => `head ${i}`);
  fillSelect(ui.attentionBaselineHead, baseline?.layers[0]?.heads.length ?? 0, (i) => `head ${i}`);
  renderMaps();
}

ui.attentionForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void run('attention', computeMaps);
});
ui.needle.addEventListener('click', () => {
  ui.attentionPrompt.value = NEEDLE_PROMPT;
  void run('attention', computeMaps);
});
ui.attentionLayer.addEventListener('change', renderMaps);
ui.attentionHead.addEventListener('change', renderMaps);
ui.attentionBaselineHead.addEventListener('change', renderMaps);

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------

let trainResumable = false;

async function train(resume: boolean): Promise<void> {
  if (!resume) {
    state.losses = [];
    lossChart.reset();
  }
  const steps = Number(ui.trainSteps.value);
  ui.trainProgress.max = steps;
  const result = await engine.call(
    'train',
    {
      resume,
      text: ui.trainText.value,
      steps,
      learningRate: Number(ui.trainLr.value),
      sequenceLength: Number(ui.trainSeq.value),
      batchSize: Number(ui.trainBatch.value),
      seed: 0,
    },
    (event) => {
      if (event.kind !== 'train') return;
      const { step, loss } = event.progress;
      state.losses.push({ step, diff: loss.diff, baseline: loss.baseline });
      lossChart.add(step, loss.diff, loss.baseline);
      ui.trainProgress.max = event.progress.steps;
      ui.trainProgress.value = step;
      ui.trainStatus.textContent =
        `step ${step} of ${event.progress.steps}: loss DIFF ${loss.diff.toFixed(3)}, ` +
        `baseline ${loss.baseline.toFixed(3)} nats/token`;
    },
  );
  trainResumable = result.stopped;
  const last = result.losses.at(-1);
  ui.trainStatus.textContent =
    `${result.stopped ? 'stopped' : 'done'} at step ${result.step} of ${result.steps}` +
    (last ? `; last loss DIFF ${last.diff.toFixed(3)}, baseline ${last.baseline.toFixed(3)}` : '');
  await refreshModels();
}

ui.trainForm.addEventListener('submit', (event) => {
  event.preventDefault();
  void run('train', () => train(false));
});
ui.trainResume.addEventListener('click', () => void run('train', () => train(true)));
ui.trainStop.addEventListener('click', () => void engine.call('stop', {}));

async function save(slot: Slot): Promise<void> {
  const folder = await engine.call('save', { slot });
  const name = `diff-transformer-${slot}`;
  const zip = zipSync(Object.fromEntries(folder.files.map((f) => [`${name}/${f.name}`, f.bytes])));
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }));
  link.download = `${name}.zip`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

ui.saveDiff.addEventListener('click', () => void run('save', () => save('diff')));
ui.saveBaseline.addEventListener('click', () => void run('save', () => save('baseline')));

// ---------------------------------------------------------------------------------------------
// Start: pick the best available backend, load the built-in pair, show the needle example's maps.
// ---------------------------------------------------------------------------------------------

void run('start', async () => {
  const backends = await engine.call('backends', {});
  renderBackends(backends);
  const first = backends.backends.find((b) => b.available);
  if (!first) throw new Error('no backend is available in this browser: neither WebGPU nor the CPU backend started');
  renderBackends(await engine.call('setBackend', { name: first.name }));
  await loadBuiltin();
  await computeMaps();
  // After the built-in maps: a real checkpoint's float64 maps are for when a person asks.
  const requested = params.get('model');
  if (requested) {
    ui.hubModel.value = requested;
    await loadHub(requested);
  }
}).finally(() => {
  state.ready = true;
  document.body.dataset.ready = 'true';
});
