"""The aggregation algorithms the ``aggregation_algorithm`` pod env may name, and what each sets.

One name picks a whole Plato stack: the server, client and algorithm types (and
any other key the stack needs). Plato resolves each type through its registries;
the plugin's own algorithms sit there only once their modules are registered, so
a name is checked against the live registries when it is used, never at import.
Algorithms that cannot run in Sedna pods are listed too, with the reason, so a
pod refuses them at start instead of misbehaving in round 1.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from plato_sedna.errors import ConfigError

LOGGER = logging.getLogger(__name__)

ENV_NAME = "aggregation_algorithm"
POD_ROLES = ("aggregator", "trainer")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()  # a settings() value that removes the key from the config


@dataclass(frozen=True)
class AggregationAlgorithm:
    """One catalogue entry.

    name : str
        The value of the ``aggregation_algorithm`` env.
    description : str
        One line: what it does.
    server, client, algorithm : str
        ``server.type``, ``clients.type`` and ``algorithm.type`` it sets.
    extra : Mapping[str, Any] (default: empty)
        Further dotted Plato keys it sets, in every role.
    trainer_extra : Mapping[str, Any] (default: empty)
        Keys set in the trainer pod only, after the role's own keys.
    not_in_pods : str | None (default: None)
        Why it cannot run in Sedna pods, and what to use instead; None when it runs.
    pod_note : str | None (default: None)
        How it runs differently in pods than in Plato's own launcher; logged at start.
    origin : str (default: "Plato 1.41")
        Who provides the components.
    """

    name: str
    description: str
    server: str
    client: str
    algorithm: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    trainer_extra: Mapping[str, Any] = field(default_factory=dict)
    not_in_pods: str | None = None
    pod_note: str | None = None
    origin: str = "Plato 1.41"

    @property
    def runs_in_pods(self) -> bool:
        return self.not_in_pods is None

    def keys(self) -> dict[str, Any]:
        """Every dotted key this entry sets in any role."""
        return {
            "algorithm.type": self.algorithm,
            "server.type": self.server,
            "clients.type": self.client,
            **self.extra,
        }


def _same_types(name: str, description: str, origin: str = "Plato 1.41", **kwargs) -> AggregationAlgorithm:
    return AggregationAlgorithm(name, description, name, name, name, origin=origin, **kwargs)


_ENTRIES = (
    AggregationAlgorithm("fedavg", "Federated averaging of whole models (Plato's default)", "fedavg", "simple", "fedavg"),
    _same_types(
        "fedavg_personalized",
        "FedAvg that keeps algorithm.local_layer_names on each trainer and samples "
        "algorithm.personalization.participating_client_ratio of the trainers a round",
        pod_note=(
            "Plato's personalization round (every trainer eligible) follows the round in which the "
            "job's stop condition holds (Plato's follows trainer.rounds), and then the job ends; "
            "trainers keep their algorithm.local_layer_names every round"
        ),
    ),
    _same_types(
        "split_learning",
        "Split learning: one trainer a round sends activations up to the cut layer, the "
        "aggregator trains the rest and returns gradients (needs cut_layer and TEST_DATASET_URL)",
        extra={"trainer.type": "sedna_split_learning", "clients.per_round": 1},
        trainer_extra={"clients.do_test": False},
    ),
    AggregationAlgorithm(
        "fedavg_lora",
        "FedAvg of the LoRA adapters only (peft), for a Hugging Face model with [parameters.lora]",
        "fedavg_lora",
        "simple",
        "fedavg_lora",
    ),
    AggregationAlgorithm(
        "fedavg_cross_silo",
        "Hierarchical FedAvg: edge servers aggregate their silo's clients, the central server the edges",
        "fedavg_cross_silo",
        "simple",
        "fedavg",
        extra={"algorithm.cross_silo": True},
        pod_note=(
            "Plato's central server would spawn its edge servers as processes on ports the job's "
            "Service does not expose; the aggregator (server.type sedna_cross_silo) keeps each "
            "silo's model itself, trains it with the silo's trainers and merges the silos every "
            "algorithm.local_rounds rounds; trainer.rounds counts these rounds (Plato's counts merges)"
        ),
    ),
    AggregationAlgorithm(
        "fedavg_gan",
        "FedAvg of a GAN's generator and discriminator (Plato's dcgan, trainer.type gan)",
        "fedavg_gan",
        "simple",
        "fedavg_gan",
        extra={"trainer.type": "gan"},
        trainer_extra={"clients.do_test": False},
        pod_note=(
            "the aggregator tests the generator with Plato's FID (lower is better), which the job's "
            "metrics carry as its accuracy; InceptionV3's weights come from trainer.fid_weights_url "
            "(default: torchvision's file) when first needed, not downloaded at start"
        ),
    ),
    *(
        AggregationAlgorithm(
            f"fedavg_mpc_{scheme}",
            f"FedAvg with secure aggregation: trainers send {scheme} secret shares of their update",
            f"fedavg_mpc_{scheme}",
            "mpc",
            "fedavg",
            extra={"clients.outbound_processors": [f"mpc_model_encrypt_{scheme}"]},
            pod_note=(
                "the round store of secret shares is shared objects (PLATO_SEDNA_MPC_STORE_URL, or "
                "beside the S3 transmitter's payloads) instead of Plato's locked local file or S3 "
                "plus ZooKeeper; as in Plato, the aggregator reads every share to reconstruct the sum"
            ),
        )
        for scheme in ("additive", "shamir")
    ),
    AggregationAlgorithm(
        "fedavg_he",
        "FedAvg of homomorphically encrypted updates (CKKS through TenSEAL)",
        "fedavg_he",
        "simple",
        "fedavg",
        extra={"clients.outbound_processors": ["model_encrypt"], "clients.inbound_processors": ["model_decrypt"]},
        pod_note=(
            "every worker encrypts under the job's one CKKS context (PLATO_SEDNA_HE_CONTEXT_FILE, a "
            "mounted Secret) instead of making its own; as in Plato, that context holds the secret "
            "key and the aggregator decrypts the average to test and publish it, so the encryption "
            "keeps single updates from the wire and the transmitter's store, not from the aggregator"
        ),
    ),
    _same_types(
        "mistnet",
        "MistNet: trainers upload noised features of a pretrained, frozen front once; the "
        "aggregator trains the back (needs cut_layer; epsilon optional)",
        origin="plato_sedna",
    ),
    AggregationAlgorithm(
        "hf_fedavg",
        "FedAvg of what a Hugging Face model exchanges: its LoRA adapters when it has them, "
        "else every weight; logs the bytes a round moves",
        "fedavg",
        "simple",
        "hf_fedavg",
        origin="plato_sedna",
    ),
    _same_types(
        "adaptive_freezing",
        "Adaptive parameter freezing: stable parameters stop being sent until they drift",
        origin="plato_sedna",
    ),
    _same_types(
        "adaptive_sync",
        "Adaptive synchronisation frequency: the aggregator tunes how many local epochs "
        "trainers run between syncs",
        origin="plato_sedna",
    ),
)

CATALOG: Mapping[str, AggregationAlgorithm] = MappingProxyType({entry.name: entry for entry in _ENTRIES})


def known_names() -> str:
    return ", ".join(CATALOG)


def lookup(name: str) -> AggregationAlgorithm:
    """The entry named ``name``; ConfigError naming the known ones when there is none."""
    entry = CATALOG.get(name)
    if entry is None:
        raise ConfigError(
            f"{ENV_NAME}={name!r} is not an aggregation algorithm plato_sedna knows; "
            f"set it to one of: {known_names()}"
        )
    return entry


# ---------------------------------------------------------------------------
# Components present in Plato's registries


def _server_names() -> set[str]:
    """Server types Plato would find: the live registry when loaded, else what will be in it.

    ``plato.servers.registry`` reads ``Config()`` at import, so it cannot be imported
    before the config exists; until then its names are Plato's (the catalogue's
    Plato entries, fixed by the pinned wheel) and the plugin's registration entries.
    """
    loaded = sys.modules.get("plato.servers.registry")
    if loaded is not None:
        # Plato registers fedavg_he (and only it) when the config names it at import.
        return set(loaded.registered_servers) | {"fedavg_he"}
    from plato_sedna.registration import ENTRIES

    plugin = {key for module, _, key, _ in ENTRIES if module == "plato.servers.registry"}
    return plugin | {entry.server for entry in _ENTRIES if entry.origin == "Plato 1.41"}


def missing_components(entry: AggregationAlgorithm) -> list[str]:
    """The types of ``entry`` that Plato's registries lack now, as ``key = value`` texts."""
    from plato.algorithms import registry as algorithms
    from plato.clients import registry as clients

    import plato_sedna  # noqa: F401 - the plugin's names are in the registries once imported

    present = {
        "server.type": entry.server in _server_names(),
        "clients.type": entry.client in clients.registered_clients,
        "algorithm.type": entry.algorithm in algorithms.registered_algorithms,
    }
    values = {"server.type": entry.server, "clients.type": entry.client, "algorithm.type": entry.algorithm}
    return [f"{key} = {values[key]!r}" for key, found in present.items() if not found]


def check_available(entry: AggregationAlgorithm) -> None:
    """ConfigError when a component of ``entry`` is not registered (e.g. not installed yet)."""
    missing = missing_components(entry)
    if missing:
        raise ConfigError(
            f"{ENV_NAME}={entry.name!r} needs {' and '.join(missing)}, which Plato's registries "
            f"do not hold in this installation ({entry.origin} provides them); install a "
            "plato-sedna version that has it, or pick another algorithm"
        )


# ---------------------------------------------------------------------------
# What an entry sets on a resolved config


def check_runs_in_pods(entry: AggregationAlgorithm, chosen_by: str) -> None:
    """ConfigError when ``entry`` cannot run in Sedna pods; ``chosen_by`` names the key or env."""
    if entry.not_in_pods is not None:
        raise ConfigError(f"{chosen_by} = {entry.name!r} cannot run in Sedna pods: {entry.not_in_pods}")


def check_pod_env(value: str) -> None:
    """ConfigError unless ``aggregation_algorithm=value`` can start a Sedna pod (for validate)."""
    entry = lookup(value)
    check_runs_in_pods(entry, ENV_NAME)
    check_available(entry)


def _entry_in_file(config: Mapping[str, Any]) -> tuple[AggregationAlgorithm, str] | None:
    """The catalogue entry the file's own types name (server first), with the key naming it."""
    for section in ("server", "algorithm"):
        name = (config.get(section) or {}).get("type")
        if name in CATALOG and (section == "algorithm" or CATALOG[name].server == name):
            return CATALOG[name], f"{section}.type"
    return None


def name_in_config(config: Mapping[str, Any]) -> str | None:
    """The catalogue name a config's own types select (``server.type`` first), or None."""
    found = _entry_in_file(config)
    return found[0].name if found is not None else None


def settings(config: Mapping[str, Any], name: str | None, role: str) -> dict[str, Any]:
    """The dotted keys to set on a resolved ``config`` for the algorithm ``name`` (the env's value).

    Without ``name`` the file's own ``server.type``/``algorithm.type`` is looked up,
    and in a pod refused or completed the same way. Meant to run after the role's
    overlay, so that role-specific keys (a split-learning trainer tests nothing) win.

    Raises
    ------
    ConfigError
        For an unknown name, a component not registered, an algorithm that cannot
        run in pods (in the aggregator or trainer role), or one missing what it needs.
    """
    if name is not None:
        entry, chosen_by = lookup(name), ENV_NAME
    else:
        found = _entry_in_file(config)
        if found is None:
            return {}
        entry, chosen_by = found
    in_pod = role in POD_ROLES
    if in_pod:
        check_runs_in_pods(entry, chosen_by)  # before the registries: no need to import Plato
    keys: dict[str, Any] = {}
    if name is not None:
        check_available(entry)
        keys.update(entry.keys())
    if not in_pod:
        return keys
    if entry.pod_note is not None:
        LOGGER.warning("%s = %s in a Sedna pod: %s", chosen_by, entry.name, entry.pod_note)
    if role == "trainer":
        keys.update(entry.trainer_extra)
    requirement = _REQUIREMENTS.get(entry.name)
    if requirement is not None:
        keys.update(requirement(config, role))
    return keys


def _split_learning(config: Mapping[str, Any], role: str) -> dict[str, Any]:
    """A cut layer (``parameters.model.cut_layer``, or the ``cut_layer`` env), and a test set to test on."""
    model = (config.get("parameters") or {}).get("model") or {}
    cut_layer = config["algorithm"].get("cut_layer", model.get("cut_layer"))
    if cut_layer is None:
        raise ConfigError(
            "split_learning cuts the model at a layer, and none is set; set the cut_layer env "
            "(e.g. relu3 for lenet5) or parameters.model.cut_layer in the config"
        )
    _need_aggregator_test_set(
        config, role, "split_learning: the aggregator trains the model's back part and tests the whole model itself"
    )
    return {"parameters.model.cut_layer": cut_layer, "server.do_test": True}


def _need_aggregator_test_set(config: Mapping[str, Any], role: str, why: str) -> None:
    """ConfigError for an aggregator without a test set when ``why`` says it tests on one."""
    has_test_set = (config.get("sedna") or {}).get("test_url") or config["data"].get("test_url")
    if role == "aggregator" and not has_test_set:
        raise ConfigError(
            f"{why}, on its own test set, and it has none; set TEST_DATASET_URL in the "
            "aggregationWorker's env (or data.test_url in the config)"
        )


def _lora(config: Mapping[str, Any], role: str) -> dict[str, Any]:
    if not (config.get("parameters") or {}).get("lora"):
        raise ConfigError(
            "fedavg_lora sends only LoRA adapters, and this config's model has none; give a "
            "Hugging Face model [parameters.lora] (r, lora_alpha, target_modules), or use "
            "hf_fedavg (adapters when the model has them, else every weight) or fedavg"
        )
    return {}


def _cross_silo(config: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The aggregator's own silo models (no edge servers on other ports); silos and local rounds set."""
    algorithm = config.get("algorithm") or {}
    for key in ("total_silos", "local_rounds"):
        value = algorithm.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"fedavg_cross_silo needs algorithm.{key}, a whole number from 1 (it is {value!r}); "
                f"set the {key} env or algorithm.{key} in the config"
            )
    trainers = (config.get("clients") or {}).get("total_clients")
    if isinstance(trainers, int) and algorithm["total_silos"] > trainers:
        raise ConfigError(
            f"fedavg_cross_silo: algorithm.total_silos = {algorithm['total_silos']} silos for {trainers} "
            "trainers leaves a silo without any; use at most one silo per trainer"
        )
    # Without algorithm.cross_silo, Plato's server spawns no edge servers and trainers connect to the
    # aggregator's own port.
    return {"server.type": "sedna_cross_silo", "algorithm.cross_silo": UNSET}


def _gan(config: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The plugin's GAN trainer and server; no accuracy target (FID falls); a test set for the aggregator."""
    target = (config.get("trainer") or {}).get("target_accuracy")
    if target is not None:
        raise ConfigError(
            f"fedavg_gan reports the generator's FID (lower is better) where accuracy would be, so "
            f"trainer.target_accuracy = {target!r} would misread it; remove target_accuracy (from the "
            "config and the pod env): the job runs trainer.rounds"
        )
    _need_aggregator_test_set(
        config, role, "fedavg_gan: the aggregator measures the generator's FID against real images"
    )
    return {"trainer.type": "sedna_gan", "server.type": "sedna_gan", "server.do_test": True}


_REQUIREMENTS = MappingProxyType(
    {"split_learning": _split_learning, "fedavg_lora": _lora, "fedavg_cross_silo": _cross_silo, "fedavg_gan": _gan}
)
