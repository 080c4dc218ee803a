"""Export the bundled BERT of all-MiniLM-L6-v2 to ONNX: run as a child process, the one place PyTorch loads.

    python -m llmpulse.analyzers.embeddings.onnx_export MODEL_DIR OUT.onnx

The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (batch and sequence dynamic) and
returns ``last_hidden_state``; pooling and normalisation stay in ``onnx_encoder``. Written to a
temporary name and renamed, so a concurrent reader never sees half a file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def export(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    class LastHiddenState(torch.nn.Module):
        """Keyword arguments in, one tensor out: the shape the exporter traces cleanly."""

        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # traced by the exporter
            output = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return output.last_hidden_state

    bert = AutoModel.from_pretrained(str(model_dir))
    bert.eval()
    sample = torch.ones((2, 8), dtype=torch.long)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=out.name, suffix=".part", dir=out.parent)
    os.close(handle)
    try:
        with torch.no_grad():
            torch.onnx.export(
                LastHiddenState(bert),
                (sample, torch.ones_like(sample), torch.zeros_like(sample)),
                temporary,
                dynamo=False,  # the TorchScript exporter: one self-contained file, no onnxscript needed
                input_names=list(INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "last_hidden_state")},
                opset_version=OPSET,
            )
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m llmpulse.analyzers.embeddings.onnx_export MODEL_DIR OUT.onnx", file=sys.stderr)
        return 2
    import warnings

    warnings.filterwarnings("ignore")  # the exporter's notes on traced control flow do not apply to BERT
    export(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
