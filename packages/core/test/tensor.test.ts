import { describe, expect, it } from 'vitest';
import {
  BackendMismatchError,
  DTypeError,
  DisposedTensorError,
  ShapeError,
  UnsupportedKernelError,
  keep,
  memory,
  ops,
  tensor,
  tidy,
  zeros,
} from '../src/index.js';
import { createToyBackend } from './toy-backend.js';

describe('tensors', () => {
  const backend = createToyBackend('toy-tensor');

  it('reads back what was uploaded, asynchronously', async () => {
    const t = tensor([1, 2, 3, 4, 5, 6], [2, 3], { backend });
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(Array.from(await t.data())).toEqual([1, 2, 3, 4, 5, 6]);
    t.dispose();
  });

  it('reads back with the array type of its dtype: dataFloat() and dataInt() are typed and checked', async () => {
    const floats = tensor([1.5, 2], [2], { backend });
    const ids = tensor(new Int32Array([3, 4]), [2], { backend });
    const f: Float32Array = await floats.dataFloat();
    const i: Int32Array = await ids.dataInt();
    expect(f).toBeInstanceOf(Float32Array);
    expect(Array.from(f)).toEqual([1.5, 2]);
    expect(i).toBeInstanceOf(Int32Array);
    expect(Array.from(i)).toEqual([3, 4]);
    await expect(ids.dataFloat()).rejects.toThrow(DTypeError);
    await expect(ids.dataFloat()).rejects.toThrow(
      /dataFloat\(\): expected dtype float32, float16 or bfloat16, got int32/,
    );
    await expect(floats.dataInt()).rejects.toThrow(/dataInt\(\): expected dtype int32, got float32/);
    floats.dispose();
    ids.dispose();
  });

  it('infers int32 from an Int32Array and rejects non-integers for int32', async () => {
    const t = tensor(new Int32Array([3, 4]), [2], { backend });
    expect(t.dtype).toBe('int32');
    t.dispose();
    expect(() => tensor([1.5], [1], { backend, dtype: 'int32' })).toThrow(/int32 range/);
  });

  it('refuses a dtype the backend cannot store, naming both', () => {
    expect(() => zeros([2], { backend, dtype: 'bfloat16' })).toThrow(DTypeError);
    expect(() => zeros([2], { backend, dtype: 'bfloat16' })).toThrow(/expected dtype float32 \| int32, got bfloat16/);
  });

  it('names both sizes when values do not fit the shape', () => {
    expect(() => tensor([1, 2, 3], [2, 2], { backend })).toThrow(ShapeError);
    expect(() => tensor([1, 2, 3], [2, 2], { backend })).toThrow(/expected shape 3 values, got \[2, 2\]/);
  });

  it('throws on use after dispose, and dispose twice is harmless', async () => {
    const t = tensor([1, 2], [2], { backend });
    t.dispose();
    t.dispose();
    expect(t.isDisposed).toBe(true);
    await expect(t.data()).rejects.toThrow(DisposedTensorError);
    expect(() => ops.reshape(t, [1, 2])).toThrow(DisposedTensorError);
    expect(() => ops.add(t, t)).toThrow(DisposedTensorError);
  });

  it('shares storage between a tensor and its reshaped views until the last is disposed', async () => {
    const before = memory('toy-tensor').liveStorages;
    const t = tensor([1, 2, 3, 4], [4], { backend });
    const view = ops.reshape(t, [2, -1]);
    expect(view.shape).toEqual([2, 2]);
    expect(memory('toy-tensor').liveStorages).toBe(before + 1);
    t.dispose();
    expect(Array.from(await view.data())).toEqual([1, 2, 3, 4]);
    view.dispose();
    expect(memory('toy-tensor').liveStorages).toBe(before);
    const four = tensor([1, 2, 3, 4], [4], { backend });
    expect(() => ops.reshape(four, [3, -1])).toThrow(ShapeError);
    expect(() => ops.reshape(four, [3, -1])).toThrow('reshape: expected shape of 4 elements, got [3, -1] (from [4])');
    four.dispose();
  });

  it('moves to another backend only when asked', async () => {
    const other = createToyBackend('toy-other');
    const a = tensor([1, 2], [2], { backend });
    const b = tensor([3, 4], [2], { backend: other });
    expect(() => ops.add(a, b)).toThrow(BackendMismatchError);
    expect(() => ops.add(a, b)).toThrow(/move it explicitly/);
    const moved = await b.to(backend);
    expect(moved.backend).toBe(backend);
    expect(b.isDisposed).toBe(false);
    expect(Array.from(await ops.add(a, moved).data())).toEqual([4, 6]);
    for (const t of [a, b, moved]) t.dispose();
  });

  it('reports a kernel the backend lacks as unsupported, naming kernel and backend', () => {
    const a = tensor([1, 2], [2], { backend });
    expect(() => ops.sigmoid(a)).toThrow(UnsupportedKernelError);
    expect(() => ops.sigmoid(a)).toThrow("kernel 'sigmoid' is not supported by backend 'toy-tensor'");
    a.dispose();
  });

  it('names both shapes on a shape mismatch', () => {
    const a = tensor([1, 2], [2], { backend });
    const b = tensor([1, 2, 3], [3], { backend });
    expect(() => ops.add(a, b)).toThrow('add b: expected shape [2], got [3] (shapes must match)');
    a.dispose();
    b.dispose();
  });
});

describe('tidy', () => {
  const backend = createToyBackend('toy-scope');

  it('frees every intermediate made inside it except what it returns', async () => {
    const before = memory('toy-scope').liveStorages;
    const a = tensor([1, 2], [2], { backend });
    const result = tidy(() => {
      const b = ops.add(a, a);
      const c = ops.add(b, a);
      return ops.add(c, c);
    });
    // a and result survive; b and c were freed.
    expect(memory('toy-scope').liveStorages).toBe(before + 2);
    expect(Array.from(await result.data())).toEqual([6, 12]);
    a.dispose();
    result.dispose();
    expect(memory('toy-scope').liveStorages).toBe(before);
    expect(backend.live).toBe(0);
  });

  it('keeps tensors returned inside arrays and objects, and kept tensors', () => {
    const before = memory('toy-scope').liveStorages;
    let kept!: ReturnType<typeof tensor>;
    let dropped!: ReturnType<typeof tensor>;
    const out = tidy(() => {
      kept = keep(tensor([1], [1], { backend }));
      dropped = tensor([2], [1], { backend });
      return { list: [tensor([3], [1], { backend })], nested: { x: tensor([4], [1], { backend }) } };
    });
    expect(dropped.isDisposed).toBe(true);
    expect(kept.isDisposed).toBe(false);
    expect(out.list[0].isDisposed).toBe(false);
    expect(out.nested.x.isDisposed).toBe(false);
    for (const t of [kept, out.list[0], out.nested.x]) t.dispose();
    expect(memory('toy-scope').liveStorages).toBe(before);
  });

  it('nests: a result returned from an inner scope is freed by the outer one unless returned again', () => {
    let inner!: ReturnType<typeof tensor>;
    const outer = tidy(() => {
      inner = tidy(() => tensor([1], [1], { backend }));
      expect(inner.isDisposed).toBe(false);
      return tensor([2], [1], { backend });
    });
    expect(inner.isDisposed).toBe(true);
    expect(outer.isDisposed).toBe(false);
    outer.dispose();
  });

  it('frees intermediates when the function throws, and refuses async functions', () => {
    const before = memory('toy-scope').liveStorages;
    expect(() =>
      tidy(() => {
        tensor([1], [1], { backend });
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(memory('toy-scope').liveStorages).toBe(before);
    expect(() => tidy(async () => tensor([1], [1], { backend }))).toThrow(/synchronous/);
    expect(memory('toy-scope').liveStorages).toBe(before);
  });

  it('refuses an async function before it runs, so nothing it would make escapes or rejects unhandled', async () => {
    const before = memory('toy-scope').liveStorages;
    let ran = false;
    for (const fn of [
      async () => {
        ran = true;
        tensor([1], [1], { backend });
        throw new Error('inside');
      },
      async () => {
        await null;
        ran = true;
        return tensor([1], [1], { backend });
      },
    ]) {
      expect(() => tidy(fn)).toThrow('tidy(fn): expected a synchronous function, got "an async function"');
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(ran).toBe(false);
    expect(memory('toy-scope').liveStorages).toBe(before);
  });

  it('for a plain function returning a promise, frees what it made and what the promise brings', async () => {
    const before = memory('toy-scope').liveStorages;
    // Settles after tidy has returned.
    const later = (value: () => unknown) => new Promise((resolve) => setTimeout(resolve, 0)).then(value);
    expect(() =>
      tidy(() => {
        tensor([1], [1], { backend });
        return later(() => [tensor([2], [1], { backend })]);
      }),
    ).toThrow(/got "a function returning a Promise"/);
    expect(() =>
      tidy(() => {
        tensor([1], [1], { backend });
        return later(() => {
          throw new Error('rejected later'); // must not surface as an unhandled rejection
        });
      }),
    ).toThrow(/Promise/);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(memory('toy-scope').liveStorages).toBe(before);
  });
});

describe('tidy and tensors made outside it', () => {
  const backend = createToyBackend('toy-outside');

  it('never disposes a tensor made outside the scopes, even when an inner scope returns it', () => {
    const outside = tensor([1], [1], { backend });
    tidy(() => {
      tidy(() => outside);
    });
    expect(outside.isDisposed).toBe(false);
    outside.dispose();
  });
});
