"""``plato-sedna render``: a Plato config and a few facts in, the job's manifests out.

Writes ``DIR/job.yaml`` (RBAC, optional S3 Secret template, ConfigMap, Datasets,
Model(s), FederatedLearningJob) and the config beside it, so that the same folder is
what ``kubectl apply -f DIR/job.yaml`` applies and what ``plato-sedna run DIR/job.yaml``
runs on one machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path, PurePosixPath

from plato_sedna.errors import ConfigError, PlatoSednaError
from plato_sedna.tools.secret_mounts import secret_notes

PROG = "plato-sedna render"
JOB_FILE = "job.yaml"


def _trainer(text: str) -> tuple[str, str]:
    node, sep, url = text.partition("=")
    if not sep or not node or not url:
        raise argparse.ArgumentTypeError(f"{text!r} is not NODE=DATASET_URL (e.g. edge1=s3://bucket/edge1/train.txt)")
    return node, url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write the Dataset, Model and FederatedLearningJob manifests (and RBAC, ConfigMap) "
        "that run a Plato config on a Sedna cluster.",
    )
    parser.add_argument("-c", "--config", type=Path, help="the Plato config (TOML or YAML); the files it includes "
                        "go with it")
    parser.add_argument("--config-url", metavar="URL", help="the job's Plato config as "
                        "spec.aggregationWorker.platoConfig.url (s3://, http(s):// or a path; a relative path is "
                        "beside job.yaml): no ConfigMap, and the containers name no -c; with -c too, the "
                        "hyperparameter env comes from that file")
    parser.add_argument("--trainer", action="append", type=_trainer, required=True, metavar="NODE=DATASET_URL",
                        help="an edge node and its dataset (index file, folder or s3:// URL); once per trainer; "
                        "nodes given the same URL share one Dataset, each taking partition -i N of it")
    parser.add_argument("--model-url", required=True, help="where the aggregator publishes the model (MODEL_URL); "
                        "a url ending in / or without a suffix (/model) is a folder that holds model.<ext> and "
                        "metrics.json")
    parser.add_argument("--seed-model", action="store_true", help="publish the untrained model at an s3:// "
                        "--model-url now (S3_ENDPOINT_URL, ACCESS_KEY_ID, SECRET_ACCESS_KEY from this shell): "
                        "Sedna's storage initializer downloads the Model's url before every worker starts and "
                        "fails while nothing is there")
    parser.add_argument("--name", help="the job's name (default: from the config's file name)")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--image", default="plato-sedna:0.1.0", help="the worker image (default: %(default)s)")
    parser.add_argument("--aggregator-node", help="pin the aggregator to this node")
    parser.add_argument("--test-dataset-url", help="a test index the aggregator tests the global model on")
    parser.add_argument("--pretrained-model-url", help="pretrained weights (a second Model)")
    parser.add_argument("--architecture", help="the Model's plato.sedna.io/model-name annotation (e.g. lenet5)")
    parser.add_argument("--dataset-format", help="the Datasets' format (default: from each url)")
    parser.add_argument("--model-format", help="the Models' format, e.g. huggingface for a folder (default: from the url)")
    parser.add_argument("--agg-data-path", help="s3:// prefix for the S3 transmitter (default: ws)")
    parser.add_argument("--s3-secret", metavar="NAME", help="render a credential Secret template NAME for the S3 urls")
    parser.add_argument("--s3-endpoint", help="the S3 endpoint host for --s3-secret (e.g. minio.sedna:9000)")
    parser.add_argument("--s3-http", action="store_true", help="the S3 endpoint speaks plain http")
    parser.add_argument("--token-secret", metavar="NAME", help="mount Secret NAME (key: token) as every worker's "
                        "trainer token (PLATO_SEDNA_TOKEN_FILE)")
    parser.add_argument("--tls-secret", metavar="NAME", help="serve the aggregator link over TLS: Secret NAME's "
                        "tls.crt/tls.key in the aggregator, its ca.crt in the trainers")
    parser.add_argument("--he-secret", metavar="NAME", help="fedavg_he: mount Secret NAME (key: context, from "
                        "`plato-sedna he-context`) in every worker as the job's CKKS context")
    parser.add_argument("--transmitter", action="append", default=[], metavar="NAME[:KEY=VALUE,...]",
                        help="an entry of the job's transmitter list (the proposal's transimitter_list: simple, "
                        "adaptive_freezing, adaptive_sync; e.g. adaptive_freezing:sync_frequency=10), written as "
                        "the annotation plato.sedna.io/transmitter-list")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="more env for every worker")
    parser.add_argument("-o", "--output", type=Path, help="folder to write (default: ./<name>-manifests)")
    return parser


def _config_files(path: Path) -> tuple[str, str, dict[str, str], dict]:
    """(file name, text, included files by relative name, loaded config).

    The files a config includes travel with it under the names its includes use. A config
    including a file above its own folder (``../common.toml``) cannot keep those names in
    one ConfigMap folder: it is written flattened as TOML instead.
    """
    from plato_sedna.config import load_config_file, to_toml
    from plato_sedna.tools.config_bundle import bundle

    loaded = load_config_file(path)
    files = bundle(path)
    if files.outside():
        print(
            f"note: {path} includes {', '.join(files.outside())} from outside its folder; "
            f"writing it flattened as {path.stem}.toml",
            file=sys.stderr,
        )
        return f"{path.stem}.toml", to_toml(loaded), {}, loaded
    return files.top, files.files[files.top], files.included, loaded


def _config_url(url: str) -> str:
    from plato_sedna.tools.validate import config_url_problem

    problem = config_url_problem(url)
    if problem:
        raise ConfigError(f"--config-url {problem}")
    return url


def _transmitter_list(entries: list[str], job_name: str) -> tuple[dict, ...]:
    """``--transmitter`` values as transimitter_list entries, checked by the workers' rules."""
    from plato_sedna.job_transmitter import transmitter_choice

    parsed = []
    for entry in entries:
        name, _, parameters = entry.partition(":")
        pairs = [item.partition("=") for item in parameters.split(",") if item]
        if any(not sep or not key for key, sep, _ in pairs):
            raise ConfigError(f"--transmitter {entry!r} is not NAME[:KEY=VALUE,...]")
        parsed.append({"name": name, "parameters": [{"name": key, "value": value} for key, _, value in pairs]})
    if parsed:
        transmitter_choice(f"--transmitter of job {job_name}", {"transimitter": {"transimitter_list": parsed}})
    return tuple(parsed)


def _request(args: argparse.Namespace):
    from plato_sedna.tools.job_objects import JobRequest, S3Credentials, dns_name

    if args.s3_secret and not args.s3_endpoint:
        raise ConfigError("--s3-secret needs --s3-endpoint HOST (the S3 endpoint Sedna puts in S3_ENDPOINT_URL)")
    extra_env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--env {item!r} is not NAME=VALUE")
        extra_env[name] = value
    config_url = _config_url(args.config_url) if args.config_url else None
    if args.config is None and config_url is None:
        raise ConfigError("give the Plato config with -c FILE, or --config-url URL (or both)")
    included: dict[str, str] = {}
    if args.config is not None:
        config_name, config_text, included, config = _config_files(args.config)
    else:
        config_name, config_text, config = PurePosixPath(config_url).name or "config.toml", "", {}
    name_source = args.config.stem if args.config is not None else PurePosixPath(config_url).stem
    s3 = S3Credentials(args.s3_secret, args.s3_endpoint, not args.s3_http) if args.s3_secret else None
    name = args.name or dns_name(name_source)
    return JobRequest(
        name=name,
        transmitter_list=_transmitter_list(args.transmitter, name),
        config_name=config_name,
        config_text=config_text,
        included_files=included,
        config_url=config_url,
        config=config,
        trainers=tuple(args.trainer),
        model_url=args.model_url,
        image=args.image,
        namespace=args.namespace,
        aggregator_node=args.aggregator_node,
        test_dataset_url=args.test_dataset_url,
        pretrained_model_url=args.pretrained_model_url,
        architecture=args.architecture,
        dataset_format=args.dataset_format,
        model_format=args.model_format,
        agg_data_path=args.agg_data_path,
        s3=s3,
        extra_env=extra_env,
        token_secret=args.token_secret,
        tls_secret=args.tls_secret,
        he_secret=args.he_secret,
    )


def _yaml_text(objects: list[dict]) -> str:
    """Multi-document YAML, with multi-line strings (the config) as readable blocks."""
    import yaml

    class BlockDumper(yaml.SafeDumper):
        pass

    def represent_str(dumper: yaml.SafeDumper, value: str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    BlockDumper.add_representer(str, represent_str)
    return yaml.dump_all(objects, Dumper=BlockDumper, sort_keys=False, width=120)


def _config_files_to_write(request) -> dict[str, str]:
    """The config files to write beside job.yaml: those the ConfigMap holds, or a relative
    platoConfig.url's file, each under the name the job finds it by."""
    if not request.config_text:
        return {}
    if request.config_url is None:
        return {request.config_name: request.config_text, **request.included_files}
    from plato_sedna.config_source import is_remote

    url = PurePosixPath(request.config_url)
    if is_remote(request.config_url) or url.is_absolute() or ".." in url.parts:
        return {}
    # the included files keep their places relative to the config
    return {str(url): request.config_text} | {str(url.parent / name): text for name, text in request.included_files.items()}


def write_manifests(request, folder: Path) -> Path:
    """Write ``folder/job.yaml`` and the config (and the files it includes) beside it; return the job file."""
    from plato_sedna.storage.local import write_atomically
    from plato_sedna.tools.job_objects import job_objects

    text = _yaml_text(job_objects(request))
    header = (
        f"# Rendered by plato-sedna render from {request.config_url or request.config_name}.\n"
        f"#   kubectl apply -f {JOB_FILE}           (on a cluster with Sedna)\n"
        f"#   plato-sedna run {JOB_FILE}            (on this machine)\n"
    )
    job_file = folder / JOB_FILE
    write_atomically(job_file, lambda file: file.write((header + text).encode()))
    for name, config_text in _config_files_to_write(request).items():
        write_atomically(folder / name, lambda file, data=config_text.encode(): file.write(data))
    return job_file


def _seed(args: argparse.Namespace, request) -> list[str]:
    """Publish the initial model when asked (``--seed-model``); the lines to print."""
    from plato_sedna.tools.seed_model import needs_seed, seed

    if not needs_seed(request.model_url):
        return ["note: --seed-model: a hostPath Model url needs no seed (nothing is downloaded); see below"] if (
            args.seed_model
        ) else []
    if not args.seed_model:
        return [
            f"note: Sedna downloads the Model url {request.model_url} into every worker before it starts, and the "
            "pods fail (Failed to fetch files) while nothing is there: render again with --seed-model, or put an "
            "initial model there, before kubectl apply"
        ]
    if request.model_url.split("://", 1)[0].lower() != "s3":
        raise ConfigError(f"--seed-model publishes to s3:// urls; {request.model_url} cannot be written to")
    url = seed(request.model_url, request.config, architecture=request.architecture, model_format=request.model_format)
    return [f"seeded {url} with the untrained model (round 0): the storage initializer will find it"]


def node_notes(request) -> list[str]:
    """What every node must hold for the job's hostPath urls (the GM mounts them with type Directory)."""
    from plato_sedna.tools.node_paths import hostpath_notes

    return hostpath_notes(request)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        request = _request(args)
        job_file = write_manifests(request, args.output or Path(f"{request.name}-manifests"))
    except PlatoSednaError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
    written = ", ".join(str(job_file.parent / name) for name in _config_files_to_write(request))
    print(f"wrote {job_file} ({len(request.trainers)} trainer(s))" + (f" and {written}" if written else ""))
    try:
        seeded = _seed(args, request)
    except PlatoSednaError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
    for line in seeded + node_notes(request):
        print(line)
    for note in secret_notes(request.name, request.namespace, request.token_secret, request.tls_secret, request.he_secret):
        print(note)
    print(f"check it with: plato-sedna validate {job_file}")
    return 0
