"""``generated_queries``: doc2query, entity extraction and generic rewrite, plus T->T / T->I styles."""


import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, as_json, finish_stage, gate_spec, md_table
from dagster_project import pools
from dagster_project.io_manager import ParquetIOManager
from dagster_project.partitions import source_shards
from dagster_project.resources import LineageResource, LLMResource, WorkbenchResource
from gme_data.generation import generate_queries
from gme_data.generation.estimate import estimate_generation
from gme_data.generation.usage import usage_markdown
from gme_data.stage_speed import StageClock


class GeneratedQueriesConfig(dg.Config):
    min_rows: int = Field(default=1, description="Gate: fewest generated queries a shard may yield")
    max_rows: int = Field(default=10_000_000, description="Gate: most generated queries")
    min_query_chars: int = Field(default=8, description="Gate: shortest query")
    max_query_chars: int = Field(default=300, description="Gate: longest query")
    estimate_only: bool = Field(default=False, description="Only estimate prompts, tokens and worst-case cost "
                                "(and what the response cache covers), recorded as an asset observation; "
                                "no endpoint is called, nothing is materialized and the step ends as a "
                                "failure that says so (so nothing downstream runs on a missing table)")


def _entity_leak(row: pd.Series) -> bool:
    entity, rewrite = row.get("entity"), row.get("rewritten_query")
    if not isinstance(entity, str) or not isinstance(rewrite, str) or not entity.strip():
        return False
    return entity.strip().lower() in rewrite.lower()


def _derive(df: pd.DataFrame) -> pd.DataFrame:
    q = df["query"].fillna("").str.strip().str.lower()
    a = df["answer"].fillna("").str.strip().str.lower()
    df["_query_equals_answer"] = (q == a) & (q != "")
    df["_entity_leak"] = df.apply(_entity_leak, axis=1) if len(df) else pd.Series(dtype=bool)
    return df


@dg.asset(
    partitions_def=source_shards,
    group_name="synthesis",
    owners=OWNERS,
    pool=pools.llm_pool(),
    tags={"stage": "generation"},
    kinds={"python", "parquet", "openai"},
    check_specs=[gate_spec("generated_queries", "schema, non-empty queries within length bounds, query != "
                                                "answer, rewrite never names the entity, prompt version present")],
    description=(
        "Queries written for each candidate by an LLM: by default a local llama.cpp server (SmolLM2-135M "
        "GGUF) started for the run, or any OpenAI-compatible endpoint (cached in DuckDB, retried, accounted), "
        "or explicitly by deterministic rules (backend offline-rules): doc2query + entity extraction + "
        "generic rewrite ('this plant') for fused queries, and plain T->T / T->I queries."
    ),
)
def generated_queries(
    context: dg.AssetExecutionContext,
    config: GeneratedQueriesConfig,
    candidates: pd.DataFrame,
    llm: LLMResource,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    clock = StageClock()  # items/s and vector-cache hits of this stage
    cache_path = str(workbench.path("cache") / "llm_responses.duckdb")
    gen_config = llm.generation_config(cache_path=cache_path)
    if config.estimate_only:
        estimate = estimate_generation(candidates, gen_config, cache_path=cache_path)
        context.log.info(estimate.summary())
        partition_key = context.partition_key if context.has_partition_key else None
        yield dg.AssetObservation(asset_key=context.asset_key, partition=partition_key,
                                  metadata={"estimate": as_json(estimate.as_dict()),
                                            "estimated_cost_usd_max": estimate.cost_usd_max,
                                            "estimated_prompts": estimate.prompts,
                                            "cached_prompts": estimate.cached_prompts})
        raise dg.Failure(description=f"estimate_only: nothing materialized, no endpoint called. {estimate.summary()}",
                         metadata={"estimate": as_json(estimate.as_dict())}, allow_retries=False)
    context.log.info(f"generating with backend={gen_config.backend} model={gen_config.model_name}")
    partition = context.partition_key if context.has_partition_key else ""
    table, output, report = generate_queries(candidates, gen_config, cache_path=cache_path,
                                             run_id=context.run_id, partition=partition)
    context.log.info(report.summary())
    rep = report.as_dict()
    by_style = table["style"].value_counts().rename_axis("style").reset_index(name="n") if len(table) else None
    metadata = {
        "backend": gen_config.backend,
        "generator": report.generator,
        "model": report.model,
        "requests": rep.get("requests", 0),
        "cache_hits": rep.get("cache_hits", 0),
        "prompt_tokens": rep.get("prompt_tokens", 0),
        "completion_tokens": rep.get("completion_tokens", 0),
        "cost_usd": float(rep.get("cost_usd", 0.0)),
        "max_budget_usd": float(gen_config.max_budget_usd),
        "max_budget_tokens": int(gen_config.max_budget_tokens),
        "llm_mode": gen_config.mode,
        "llm_batches": as_json(report.batches),
        "llm_usage": dg.MetadataValue.md(usage_markdown(rep.get("usage_by_prompt", {}))),
        "queries_by_style": dg.MetadataValue.md(md_table(by_style) if by_style is not None else "_none_"),
        "prompt_versions": as_json(rep.get("prompt_versions", {})),
        "run_report": as_json(rep),
        "generation_config": as_json(gen_config.public_dict()),
        "llm_server": as_json(report.llm_server),
    }
    stage_speed = clock.metadata(len(table))
    yield from finish_stage(
        context, table, output, io_manager=io_manager, lineage=lineage, workbench=workbench,
        gate_params={"min_rows": config.min_rows, "max_rows": config.max_rows,
                     "min_query_chars": config.min_query_chars, "max_query_chars": config.max_query_chars},
        derive=_derive, metadata={**metadata, **stage_speed}, report_extra=rep,
    )
