"""Saving a model with its model card, and uploading a checkpoint folder to the Hub.

:class:`ModelHubMixin` is :class:`~jetfm.hub.HubMixin` (name resolution and safety checks on
``from_pretrained``) plus a ``save_pretrained`` that writes the generated model card and a
``push_to_hub`` that uploads the whole folder, card included, with :func:`push_folder`.
Only checkpoint files are ever sent (:data:`~jetfm.hub.CHECKPOINT_PATTERNS`; never pickles,
``checkpoint-*`` training state or hidden files).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from jetfm.atomic import write_text
from jetfm.errors import CheckpointError, JetFMError
from jetfm.hub import (
    CHECKPOINT_PATTERNS,
    PROCESSOR_NAME,
    PUSH_IGNORE_PATTERNS,
    HubMixin,
    check_checkpoint_folder,
    hub_endpoint,
)
from jetfm.model_card import write_model_card

logger = logging.getLogger(__name__)


class ModelHubMixin(HubMixin):
    """:class:`HubMixin` for models, plus: ``save_pretrained`` also writes the model card
    (``README.md``, unless the folder has a hand-written one) and ``push_to_hub`` uploads
    the whole folder, card included."""

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        push = kwargs.pop("push_to_hub", False)
        repo_id = kwargs.pop("repo_id", None)
        token = kwargs.pop("token", None)
        super().save_pretrained(save_directory, *args, **kwargs)
        if not kwargs.get("is_main_process", True):
            return
        statistics = getattr(self, "preprocessor_config", None)
        if statistics:  # the statistics it was loaded with travel with the weights
            text = json.dumps(statistics, indent=2, sort_keys=True) + "\n"
            write_text(Path(save_directory) / PROCESSOR_NAME, text)
        try:
            write_model_card(save_directory, repo_id=repo_id)
        except Exception as err:  # a card must never cost the user their weights
            logger.warning("could not write the model card in %s: %s", save_directory, err)
        if push:
            push_folder(save_directory, repo_id or Path(save_directory).name, token=token)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
    ):
        """Save to a temporary folder (weights, config, card) and upload it with
        :func:`push_folder`. Returns huggingface_hub's ``CommitInfo``."""
        with tempfile.TemporaryDirectory(prefix="jetfm-push-") as tmp:
            self.save_pretrained(tmp, max_shard_size=max_shard_size)
            write_model_card(tmp, repo_id=repo_id, tags=tags, overwrite=True)
            return push_folder(
                tmp,
                repo_id,
                private=private,
                token=token,
                revision=revision,
                commit_message=commit_message or f"Upload {type(self).__name__}",
                commit_description=commit_description,
                create_pr=create_pr,
                write_card=False,
            )


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    create_pr: bool = False,
    write_card: bool = True,
):
    """Upload a checkpoint folder to ``repo_id`` (created if needed) as one commit.

    The folder is checked first (safetensors weights, valid config); with ``write_card`` its
    generated ``README.md`` is refreshed for ``repo_id`` (a hand-written one is kept). Only
    checkpoint files are sent (JSON, safetensors, the card; never pickles, ``checkpoint-*``
    or hidden files). Returns huggingface_hub's ``CommitInfo``.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    if "/" not in repo_id:
        raise CheckpointError(f"repo id {repo_id!r} needs an owner: ORG/NAME")
    check_checkpoint_folder(folder)
    if write_card:
        write_model_card(folder, repo_id=repo_id)
    api = HfApi(endpoint=hub_endpoint(), token=token, library_name="jetfm")
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main" and not create_pr:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            revision=revision,
            commit_message=commit_message or f"Upload {folder.name} with jetfm",
            commit_description=commit_description,
            allow_patterns=list(CHECKPOINT_PATTERNS),
            ignore_patterns=list(PUSH_IGNORE_PATTERNS),
            create_pr=create_pr,
        )
    except JetFMError:
        raise
    except Exception as err:  # HTTP/auth/connection errors: one clear line for the CLI
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise JetFMError(
            f"pushing {folder} to {repo_id} on {hub_endpoint()} failed: "
            f"{type(err).__name__}: {first} (token: --token, $HF_TOKEN or `hf auth login`)"
        ) from err
    logger.info("pushed %s to %s (%s)", folder, repo_id, getattr(info, "oid", info))
    return info


__all__ = ["ModelHubMixin", "push_folder"]
