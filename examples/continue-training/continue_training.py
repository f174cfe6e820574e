"""Continue training a `difftx export --format diffllama` folder with transformers + accelerate, on as
many GPUs as `accelerate launch` gives it (data parallel, or FSDP through accelerate's config), then save
a folder that difftx loads back (`difftx generate --model OUT`, `difftx export --format onnx --model OUT`).

    accelerate launch --config_file accelerate-ddp.yaml continue_training.py \
        --model hf --data corpus.txt --out hf-continued --steps 1000 --seq-len 512 --batch-size 8

NOT RUN YET: this needs PyTorch on GPUs, which the machines this project is developed on do not have.
Only its syntax is checked in CI. Requirements: torch, transformers >= 4.48 (DiffLlama), accelerate.
"""

import argparse
import math
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import AutoTokenizer, DiffLlamaForCausalLM, get_cosine_schedule_with_warmup


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a DiffLlama folder (difftx export --format diffllama)")
    p.add_argument("--data", required=True, help="a UTF-8 text file to train on")
    p.add_argument("--out", required=True, help="where the continued model is saved")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=8, help="sequences per GPU per micro-step")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def packed_sequences(tokenizer, path, seq_len):
    """The text as one stream of ids, cut into sequences of seq_len + 1 (inputs and shifted targets)."""
    ids = tokenizer(Path(path).read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise SystemExit(f"{path}: {len(ids)} tokens, fewer than one sequence of {seq_len + 1}")
    return torch.tensor(ids[: n * seq_len + 1]).unfold(0, seq_len + 1, seq_len)


def main():
    args = parse_args()
    accelerator = Accelerator(gradient_accumulation_steps=args.grad_accum)
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = DiffLlamaForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
    data = packed_sequences(tokenizer, args.data, args.seq_len)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True)
    # No weight decay on norms and λ vectors, as difftx's AdamW groups them.
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    schedule = get_cosine_schedule_with_warmup(optimizer, args.warmup, args.steps)
    model, optimizer, loader, schedule = accelerator.prepare(model, optimizer, loader, schedule)

    model.train()
    step = 0
    while step < args.steps:
        for batch in loader:
            with accelerator.accumulate(model):
                # labels = inputs: transformers shifts them by one inside the loss.
                loss = model(input_ids=batch, labels=batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                step += 1
                if step % 10 == 0 or step == args.steps:
                    loss_value = accelerator.gather(loss.detach()).mean().item()
                    accelerator.print(f"step {step}: loss {loss_value:.4f} ({loss_value / math.log(2):.3f} bits/token)")
                if step >= args.steps:
                    break

    # Gather the full state (FSDP shards it) and save float32 safetensors, which difftx loads.
    accelerator.wait_for_everyone()
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(args.out, state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(args.out)
        accelerator.print(f"saved {args.out}: difftx generate --model {args.out}")


if __name__ == "__main__":
    main()
