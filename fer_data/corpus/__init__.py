"""The corpus: curated sources merged into leak-free train / val / test shards (README.md, "Corpus")."""

from fer_data.corpus.build import CorpusGateFailed, build_corpus
from fer_data.corpus.inputs import CorpusInputError, Table, table_from_dir, tables_from_validated
from fer_data.corpus.params import CorpusParams, resolve

__all__ = [
    "CorpusGateFailed",
    "CorpusInputError",
    "CorpusParams",
    "Table",
    "build_corpus",
    "resolve",
    "table_from_dir",
    "tables_from_validated",
]
