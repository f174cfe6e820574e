/** The maps worker: float64 reference maps per layer and head, off the page's thread and off the engine's. */
import { type HostTensor, resolveConfig } from '@diff-transformer/core';
import * as reference from '@diff-transformer/reference';
import type { HostParameters, Slot } from '../engine/protocol.js';
import { workerScope } from '../worker-scope.js';
import type { HeadMaps, MapsRequest, MapsResponse, ModelMaps } from './protocol.js';

const scope = workerScope;
const held = new Map<Slot, HostParameters>();

function compute(slot: Slot, version: number, ids: number[]): ModelMaps {
  const parameters = held.get(slot);
  if (!parameters || parameters.version !== version) {
    throw new Error(`the maps worker holds no parameters of version ${version} of the ${slot} model`);
  }
  const config = resolveConfig(parameters.config);
  const host = new Map<string, HostTensor>(
    parameters.parameters.map((p) => [p.name, { shape: p.shape, data: p.data }]),
  );
  const { layers } = reference.attentionMaps(config, host, [ids]);
  return {
    slot,
    version,
    attention: config.attention,
    tokens: ids.length,
    layers: layers.map((layer) => ({
      layer: layer.layer,
      lambda: layer.lambda,
      lambdaInit: layer.lambdaInit,
      heads: layer.heads.map(
        (head): HeadMaps =>
          head.kind === 'differential'
            ? {
                kind: 'differential',
                map1: head.map1.data,
                map2: head.map2.data,
                lambda: head.lambda.data,
                differential: head.differential.data,
              }
            : { kind: 'softmax', map: head.map.data },
      ),
    })),
  };
}

scope.onmessage = (message: MessageEvent<MapsRequest>) => {
  const request = message.data;
  try {
    if (request.type === 'parameters') {
      held.set(request.slot, request.parameters);
      scope.postMessage({ id: request.id, type: 'result', result: null } satisfies MapsResponse);
      return;
    }
    const result = compute(request.slot, request.version, request.ids);
    const transfer = result.layers.flatMap((l) =>
      l.heads.flatMap((h) =>
        h.kind === 'differential'
          ? [h.map1.buffer, h.map2.buffer, h.lambda.buffer, h.differential.buffer]
          : [h.map.buffer],
      ),
    );
    scope.postMessage({ id: request.id, type: 'result', result } satisfies MapsResponse, transfer);
  } catch (error) {
    scope.postMessage({ id: request.id, type: 'error', message: (error as Error).message } satisfies MapsResponse);
  }
};
