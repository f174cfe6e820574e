/**
 * genai_config.json: what onnxruntime-genai's generation loop reads to run a decoder graph as it is
 * (its "decoder" model type; names of the inputs and outputs; the cache's heads and head size). The
 * graph concatenates its cache (present = past ++ new), so the buffer-sharing mode that needs an
 * in-place cache (past_present_share_buffer) is off.
 */
import { type DecoderInterface, INPUT_NAMES, OUTPUT_NAMES } from './decoder.js';

export interface SpecialTokens {
  readonly bos?: number;
  readonly eos?: number | readonly number[];
  readonly pad?: number;
}

/** The config for the graph `io` describes, saved as `filename` beside it. */
export function genaiConfig(
  io: DecoderInterface,
  tokens: SpecialTokens = {},
  filename = 'model.onnx',
): Record<string, unknown> {
  const template = (f: (layer: number) => string) => f(0).replace('.0.', '.%d.');
  const eos = tokens.eos ?? tokens.pad;
  return {
    model: {
      type: 'decoder',
      ...(tokens.bos === undefined ? {} : { bos_token_id: tokens.bos }),
      ...(eos === undefined ? {} : { eos_token_id: eos }),
      ...(tokens.pad === undefined ? {} : { pad_token_id: tokens.pad }),
      context_length: io.maxPositions,
      vocab_size: io.vocabSize,
      decoder: {
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
        filename,
        head_size: io.headSize,
        hidden_size: io.hiddenSize,
        num_attention_heads: io.attentionHeads,
        num_hidden_layers: io.layers,
        num_key_value_heads: io.kvHeads,
        inputs: {
          input_ids: INPUT_NAMES.inputIds,
          attention_mask: INPUT_NAMES.attentionMask,
          position_ids: INPUT_NAMES.positionIds,
          past_key_names: template(INPUT_NAMES.pastKey),
          past_value_names: template(INPUT_NAMES.pastValue),
        },
        outputs: {
          logits: OUTPUT_NAMES.logits,
          present_key_names: template(OUTPUT_NAMES.presentKey),
          present_value_names: template(OUTPUT_NAMES.presentValue),
        },
      },
    },
    search: {
      do_sample: false,
      max_length: io.maxPositions,
      min_length: 0,
      num_beams: 1,
      num_return_sequences: 1,
      past_present_share_buffer: false,
      repetition_penalty: 1.0,
      temperature: 1.0,
      top_k: 1,
      top_p: 1.0,
    },
  };
}
