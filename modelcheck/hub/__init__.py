"""Everything that talks to the Hugging Face Hub: ``modelcheck publish``.

``files``   which local files a gate may publish and their paths in the Hub repo (no Hub import; the runner
            uses it to hash ``publish.files`` extras into the report)
``plan``    everything checked before any upload: report, gate, stage, hashes, LFS pointers, Hub refs, card YAML
``card``    the model card made from the report (a marked section inside the user's README; ``model-index`` merged)
``markdown`` report values written into the card as text, never markup
``names``   tag/branch names (git's rules), report paths and the token, checked before anything is sent
``remote``  the Hub reads before any write: refs, a landed commit of this release, the card's YAML check
``publish`` one verified commit of private copies of the files, then the tag; a rerun never makes a second commit
``retry``   429/5xx/network retries

huggingface_hub is imported lazily, inside the functions that need it: importing this package (or
``modelcheck``) stays light.
"""

from __future__ import annotations
