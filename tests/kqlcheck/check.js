// Checks KQL text with Microsoft's own parser and binder (Kusto.Language, the engine behind Azure's query editors).
// Our embedded workspace runs KQL on DuckDB, which resolves names case-insensitively and accepts some things Azure
// refuses; this gives the Azure verdict without an Azure workspace. Driven by tests/test_kql_check.py.
//
// stdin:  {"tables": {table: {column: type}}, "queries": [{"name": ..., "text": ...}]}
// stdout: {"results": [{"name", "diagnostics": [{severity, code, message, start, length, line, column}],
//                       "columns": [{name, type}] | null}]}
"use strict";

// Bridge.NET output: the runtime must be loaded first and both define globals (Bridge, Kusto). The minified
// builds are the same code and load several times faster, which keeps the test run quick.
require("@kusto/language-service-next/bridge.min.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.min.js");

const { GlobalState, KustoCode } = Kusto.Language;
const { ClusterSymbol, ColumnSymbol, DatabaseSymbol, DynamicSymbol, ScalarTypes, TableSymbol } = Kusto.Language.Symbols;

function scalarType(typeName) {
  const symbol = ScalarTypes.GetSymbol(typeName);
  // GetSymbol answers "unknown" rather than failing; a typo in the schema must not silently untype a column.
  if (!symbol || symbol === ScalarTypes.Unknown) throw new Error(`unknown column type ${JSON.stringify(typeName)}`);
  return symbol;
}

function globalsFor(tables) {
  const symbols = Object.entries(tables).map(([table, columns]) =>
    new TableSymbol.$ctor4(table, Object.entries(columns).map(
      ([column, type]) => new ColumnSymbol(column, scalarType(type), null, null, null, null))));
  // A Log Analytics workspace is one database; making it the default database is what lets a bare table name
  // resolve, exactly as it does in the portal.
  const database = new DatabaseSymbol.ctor("workspace", symbols);
  return GlobalState.Default.WithCluster(new ClusterSymbol.ctor("workspace", [database])).WithDatabase(database);
}

// The names Log Analytics reports in a result's column types. Dynamic comes in many refined shapes (bag, array of
// long, ...) that the wire format flattens to "dynamic".
function kqlTypeName(type) {
  return Bridge.is(type, DynamicSymbol) ? "dynamic" : type.Name;
}

function diagnosticsOf(code) {
  return Bridge.toArray(code.GetDiagnostics()).map((d) => {
    const line = { v: 0 };
    const column = { v: 0 };
    code.TryGetLineAndOffset(d.Start, line, column);
    return {
      severity: d.Severity, code: d.Code, message: d.Message,
      start: d.Start, length: d.Length, line: line.v, column: column.v,
    };
  });
}

function resultColumns(code) {
  // A query whose last statement is not tabular has no result schema to compare; null says so.
  if (!Bridge.is(code.ResultType, TableSymbol)) return null;
  return Bridge.toArray(code.ResultType.Columns).map((c) => ({ name: c.Name, type: kqlTypeName(c.Type) }));
}

function main(input) {
  const request = JSON.parse(input);
  const globals = globalsFor(request.tables);
  const results = request.queries.map(({ name, text }) => {
    const code = KustoCode.ParseAndAnalyze(text, globals);
    return { name, diagnostics: diagnosticsOf(code), columns: resultColumns(code) };
  });
  process.stdout.write(JSON.stringify({ results }) + "\n");
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => main(input));
