from server.tenancy import NETWORK_READER, org_database, org_id, org_reader


def test_org_id_is_an_ascii_slug_of_the_display_name():
    assert org_id("Örebro universitet") == "orebro-universitet"
    assert org_id("Alfred Nobel Science Park") == "alfred-nobel-science-park"
    assert org_id("  Mälardalens universitet (MDU) ") == "malardalens-universitet-mdu"
    assert org_id("???") == "org"


def test_each_organisation_has_its_own_database_and_reader():
    assert org_database("printfarm", "orebro-universitet") == "printfarm_orebro_universitet"
    assert org_reader("orebro-universitet") == "reader_orebro_universitet"
    assert NETWORK_READER not in {org_reader("orebro-universitet"), org_reader("ansp")}
