/**
 * @diff-transformer/train — training for the Differential Transformer on any backend: AdamW with
 * parameter groups, warm-up and decay, global-norm clipping, gradient accumulation, packed and seeded
 * data, evaluation, resumable checkpoints and export to transformers. Browser-safe; file access is in
 * '@diff-transformer/train/node'.
 */
export { DataError, DivergedError, ExportError, ResumeError, TrainingConfigError } from './errors.js';
export { AdamW, isNoDecayParameter, resolveAdamW, type AdamWOptions, type HostMoments } from './optimizer.js';
export { learningRateAt, validateSchedule, DECAY_KINDS, type DecayKind, type ScheduleOptions } from './schedule.js';
export { clipFactor, globalGradNorm } from './clipping.js';
export { GradientAccumulator } from './accumulation.js';
export {
  splitDocuments,
  decodeText,
  VALIDATION_FRACTION,
  type TextDocument,
  type TextSplit,
} from './data/text.js';
export { stripBrownTags, BROWN_FILE } from './data/brown.js';
export { tokenizeSplit, type TokenizedData, type TokenStream } from './data/tokens.js';
export { PackedSequences, SequenceOrder, evenlySpaced, type SequenceSource } from './data/sequences.js';
export { evaluate, figures, type Evaluation, type EvaluateOptions } from './evaluation.js';
export {
  Trainer,
  resolveTrainingOptions,
  TRAINER_STATE_FORMAT,
  type TrainingOptions,
  type ResolvedTrainingOptions,
  type StepReport,
  type EvalReport,
  type TrainerState,
  type TrainCallbacks,
  type SequenceData,
} from './trainer.js';
export {
  checkpointFiles,
  readTrainingState,
  OPTIMIZER_FILE,
  TRAINER_STATE_FILE,
  TRAIN_LOG_FILE,
  LOSS_CURVE_FILE,
  type FolderFile,
} from './checkpoint.js';
export {
  diffLlamaFiles,
  diffLlamaProblems,
  byteLevelTokenizerJson,
  tokenizerFiles,
  EXPORT_FORMATS,
  type ExportFormat,
  type DiffLlamaExportOptions,
} from './export.js';
export {
  PRESETS,
  SIZE_NAMES,
  matchedModel,
  presetModelConfig,
  pairCounts,
  parsePreset,
  type Preset,
  type PresetModel,
} from './presets.js';
export {
  lossCurveSvg,
  lossChartSpec,
  heatmapsSvg,
  heatmapSpec,
  type ChartSeries,
  type ChartPoint,
  type LossChartOptions,
  type HeatmapPanel,
  type HeatmapOptions,
} from './chart.js';
export { trainingCurves, type CurveMetric, type LoggedStep, type LoggedEvaluation } from './curves.js';
