import pytest

from fer_data import labels


def test_fer2013_order_matches_its_codes():
    fer7 = labels.target_set("fer2013_7")
    for code, name in labels.FER2013.items():
        assert fer7.index(name) == code


def test_every_dataset_table_maps_into_the_taxonomy():
    tables = labels.tables()  # declared by each registered source
    assert {"fer2013.codes", "jaffe.codes", "ckplus.codes", "affectnet.codes", "folder.folders"} <= set(tables)
    allowed = set(labels.CANONICAL) | {labels.NOT_AN_EMOTION}
    for name, table in tables.items():
        assert table and set(table.values()) <= allowed, name


def test_same_emotion_different_codes_across_datasets():
    # The reason the tables exist: 0 is anger in FER2013 but neutral in CK+ and AffectNet.
    assert labels.to_canonical(labels.FER2013, 0) == "anger"
    assert labels.to_canonical(labels.CKPLUS, 0) == "neutral"
    assert labels.to_canonical(labels.AFFECTNET, 0) == "neutral"
    assert labels.to_canonical(labels.RAFDB, 1) == "surprise"


def test_unknown_codes_raise_instead_of_guessing():
    with pytest.raises(labels.UnknownLabel):
        labels.to_canonical(labels.FER2013, 7)
    with pytest.raises(labels.UnknownLabel):
        labels.to_canonical(labels.JAFFE, "XX")
    with pytest.raises(labels.UnknownLabel):
        labels.to_canonical(labels.FER2013, ["unhashable"])


def test_target_sets():
    assert labels.target_set("basic6").index("neutral") is None
    assert labels.target_set("all8").classes == labels.CANONICAL
    custom = labels.target_set(["happiness", "neutral"])
    assert custom.index("neutral") == 1 and custom.index("anger") is None
    with pytest.raises(ValueError):
        labels.target_set("nope")
    with pytest.raises(ValueError):
        labels.target_set(["happy"])  # not a canonical name


def test_folder_table_overrides_are_validated():
    table = labels.folder_table({"Joyful": "happiness"})
    assert table["joyful"] == "happiness" and table["angry"] == "anger"
    with pytest.raises(ValueError):
        labels.folder_table({"x": "glee"})
