from common.urls import redact


def test_credentials_and_query_are_hidden_but_the_place_stays_readable():
    assert redact("http://admin:s3cret@10.0.0.5:5000/api") == "http://***@10.0.0.5:5000/api"
    assert redact("http://printer.local/api?apikey=s3cret") == "http://printer.local/api?***"
    assert redact("http://127.0.0.1:7125") == "http://127.0.0.1:7125"


def test_an_unparsable_url_is_not_echoed():
    assert redact("http://[::1:80/x?k=s3cret") == "<unparsable URL>"
