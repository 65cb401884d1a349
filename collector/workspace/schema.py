"""Tables of the embedded workspace: Log Analytics columns and KQL types, and the dimensional metrics store.

The Log Analytics tables mirror `shared/reference/log-analytics-tables.json` (Microsoft's table reference); a test
keeps the two equal. KQL has no null strings, so string columns are NOT NULL DEFAULT ''.
"""

from __future__ import annotations

from typing import Final

#: KQL type -> DuckDB column type.
DUCKDB_TYPES: Final[dict[str, str]] = {
    "string": "VARCHAR",
    "datetime": "TIMESTAMPTZ",
    "long": "BIGINT",
    "int": "INTEGER",
    "real": "DOUBLE",
    "bool": "BOOLEAN",
    "dynamic": "JSON",
    "guid": "VARCHAR",
    "timespan": "INTERVAL",
    "decimal": "DECIMAL(38, 18)",
}

LOG_TABLES: Final[dict[str, dict[str, str]]] = {
    "AzureDiagnostics": {
        "TenantId": "string", "TimeGenerated": "datetime", "SourceSystem": "string", "Type": "string",
        "ResourceId": "string", "_ResourceId": "string", "SubscriptionId": "string", "ResourceGroup": "string",
        "ResourceProvider": "string", "Resource": "string", "ResourceType": "string",
        "Category": "string", "OperationName": "string", "OperationVersion": "string",
        "ResultType": "string", "ResultSignature": "string", "ResultDescription": "string",
        "DurationMs": "long", "CallerIPAddress": "string", "CorrelationId": "string", "Level": "string",
        "AdditionalFields": "dynamic",
        "properties_s": "string", "location_s": "string", "event_s": "string", "Tenant_s": "string",
    },
    "AzureMetrics": {
        "TenantId": "string", "SourceSystem": "string", "TimeGenerated": "datetime", "ResourceId": "string",
        "_ResourceId": "string", "SubscriptionId": "string", "ResourceGroup": "string", "ResourceProvider": "string",
        "Resource": "string", "MetricName": "string", "Total": "real", "Count": "real", "Maximum": "real",
        "Minimum": "real", "Average": "real", "TimeGrain": "string", "UnitName": "string", "Type": "string",
    },
    "ApiManagementGatewayLlmLog": {
        "TenantId": "string", "TimeGenerated": "datetime", "CorrelationId": "string", "DeploymentName": "string",
        "ModelName": "string", "ApiVersion": "string", "OperationName": "string", "PromptTokens": "int",
        "CompletionTokens": "int", "TotalTokens": "int", "IsStreamCompletion": "bool", "RequestId": "string",
        "RequestMessages": "dynamic", "ResponseMessages": "dynamic", "SequenceNumber": "int", "Region": "string",
        "SourceSystem": "string", "Type": "string", "_ResourceId": "string", "_SubscriptionId": "string",
    },
    "ApiManagementGatewayLogs": {
        "TenantId": "string", "TimeGenerated": "datetime", "CorrelationId": "string", "ApimSubscriptionId": "string",
        "ApiId": "string", "ApiRevision": "string", "OperationId": "string", "ProductId": "string", "UserId": "string",
        "BackendId": "string", "Method": "string", "Url": "string", "ResponseCode": "int",
        "BackendResponseCode": "int", "TotalTime": "long", "BackendTime": "long", "ClientTime": "long",
        "CacheTime": "long", "CallerIpAddress": "string", "IsRequestSuccess": "bool", "RequestSize": "int",
        "ResponseSize": "int", "Cache": "string", "Errors": "dynamic", "LastErrorMessage": "string",
        "LastErrorReason": "string", "Region": "string", "Category": "string", "ClientProtocol": "string",
        "ClientTlsVersion": "string", "BackendMethod": "string", "BackendProtocol": "string",
        "BackendUrl": "string", "SourceSystem": "string", "Type": "string", "_ResourceId": "string",
        "_SubscriptionId": "string",
    },
}

#: The dimensional metrics store behind Metrics-API-shaped questions. Not a Log Analytics table (hence the
#: leading underscore, which KQL cannot name without brackets): one row per resource, metric, minute and
#: combination of dimension values, with the additive aggregations Azure keeps for a PT1M grain.
METRICS_TABLE: Final = "_PlatformMetrics"
METRICS_COLUMNS: Final[dict[str, str]] = {
    "TimeGenerated": "TIMESTAMPTZ",  # start of the minute
    "ResourceId": "VARCHAR",  # ARM id, as the account's own id (case as Azure gives it)
    "MetricName": "VARCHAR",
    "Dimensions": "JSON",  # {"ModelDeploymentName": "...", "StatusCode": "429", ...}
    "Total": "DOUBLE",
    "Count": "DOUBLE",
    "Minimum": "DOUBLE",
    "Maximum": "DOUBLE",
}

#: Where the demo generator and importers record what the workspace holds (time range, organisation).
INFO_TABLE: Final = "_WorkspaceInfo"


def create_statements() -> list[str]:
    """DDL for every table of an empty workspace."""
    statements = []
    for table, columns in LOG_TABLES.items():
        cols = []
        for name, kql_type in columns.items():
            duck = DUCKDB_TYPES[kql_type]
            if kql_type == "string":
                cols.append(f'"{name}" {duck} NOT NULL DEFAULT \'\'')
            else:
                cols.append(f'"{name}" {duck}')
        statements.append(f'CREATE TABLE IF NOT EXISTS "{table}" ({", ".join(cols)})')
    metric_cols = ", ".join(f'"{n}" {t}' for n, t in METRICS_COLUMNS.items())
    statements.append(f'CREATE TABLE IF NOT EXISTS "{METRICS_TABLE}" ({metric_cols})')
    statements.append(f'CREATE TABLE IF NOT EXISTS "{INFO_TABLE}" ("Key" VARCHAR PRIMARY KEY, "Value" VARCHAR)')
    return statements
