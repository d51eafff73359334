"""Everything that talks to the Hugging Face Hub: ``modelcheck publish``.

``files``   which local files a gate may publish and their paths in the Hub repo (no Hub import; the runner
            uses it to hash ``publish.files`` extras into the report)
``plan``    everything checked before any upload: report, gate, stage, hashes, LFS pointers, Hub refs, card YAML
``card``    the model card made from the report (a marked section inside the user's README)
``publish`` one verified commit, then the tag, with retries that never make a second commit

huggingface_hub is imported lazily, inside the functions that need it: importing this package (or
``modelcheck``) stays light.
"""

from __future__ import annotations
