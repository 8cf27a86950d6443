export { describeOnnxNetwork, exportOnnx, inferOnnxNetwork } from './export.js';
export {
  type DiscriminatorSpec,
  type ExportOnnxOptions,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  type OnnxMode,
  type OnnxNetwork,
} from './options.js';
