// Diagnostics for CycleGAN's failure modes (mode collapse, lost detail, misalignment), on the GPU.
export { COLLAPSE_ADVICE, CollapseWatch, findings, THRESHOLDS } from './checks.js';
export {
  type DirectionEvaluation,
  type EvaluateOptions,
  type EvaluationResult,
  evaluate,
  type WorstImage,
} from './evaluate.js';
export { formatDirection, formatMetrics, METRIC_ROWS } from './format.js';
export { heatLegendSvg, rgb01ToImages } from './heatmap.js';
export {
  ARROW,
  type CycleImages,
  DIRECTIONS,
  type Direction,
  type DirectionMetrics,
  flatten as flattenMetrics,
  type Generators,
  type ImageScores,
  runCycles,
  scoreCycles,
  summarize,
  TRACKED as TRACKED_METRICS,
} from './measure.js';
export {
  DIAGNOSTIC_CHARTS,
  type DiagnosticsOptions,
  type DiagnosticsReading,
  TrainingDiagnostics,
} from './monitor.js';
export {
  CONTENT_SSIM_RANGE,
  contentScores,
  cycleErrors,
  cycleHeatMap,
  detailScores,
  HEAT_MAX,
  luma01,
  meanPairwiseDistance,
  readAll,
} from './scores.js';
