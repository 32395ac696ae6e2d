"""Open311 GeoReport v2 endpoints on SQLite and real PostgreSQL: services, attributes, requests
(list with filters, create, one), errors as {code, description} lists, isolation (404)."""

from __future__ import annotations

import httpx
from agency_support import AGENCY_X, PERSONAL_TEXT, seed
from fastapi import FastAPI

import routing
from webhook.store import lifecycle, tickets

Gateway = tuple[FastAPI, httpx.AsyncClient]
BASE = "/open311/v2"


def assert_errors(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    body = response.json()
    assert isinstance(body, list) and body
    assert all(set(e) == {"code", "description"} and e["code"] == status for e in body)


async def test_services_and_definitions(gateway: Gateway) -> None:
    _, client = gateway
    services = (await client.get(f"{BASE}/services.json")).json()
    assert [s["service_code"] for s in services] == list(routing.REPORT_TYPES)
    names = {s["service_code"]: s["service_name"] for s in services}
    assert names["arnaque"] == "Arnaque ou tentative d'arnaque"
    assert all(s["metadata"] is True and s["type"] == "realtime" for s in services)
    definition = (await client.get(f"{BASE}/services/absence_vacances.json")).json()
    codes = [a["code"] for a in definition["attributes"]]
    assert {"adresse", "date_depart", "date_retour", "alarme", "commune"} <= set(codes)
    alarm = next(a for a in definition["attributes"] if a["code"] == "alarme")
    assert alarm["datatype"] == "singlevaluelist" and alarm["values"][0] == {
        "key": "oui",
        "name": "Oui",
    }
    assert_errors(await client.get(f"{BASE}/services/inconnu.json"), 404)


async def test_requests_are_scoped_to_the_caller_agency(gateway: Gateway) -> None:
    app, client = gateway
    data = await seed(app)
    key_x, key_y = data.tokens["x"], data.tokens["y"]
    listing = await client.get(f"{BASE}/requests.json", params={"api_key": key_x})
    assert listing.status_code == 200
    assert {r["service_request_id"] for r in listing.json()} == set(data.x_tickets)
    one = listing.json()[0]
    assert one["status"] == "open" and one["service_code"] == "incivilite"
    assert one["zipcode"] == "39100" and one["address_id"] == "39198"

    other = data.y_tickets[0]
    assert_errors(await client.get(f"{BASE}/requests/{other}.json", params={"api_key": key_x}), 404)
    asked = await client.get(
        f"{BASE}/requests.json", params={"api_key": key_x, "service_request_id": other}
    )
    assert asked.json() == []
    mine = await client.get(f"{BASE}/requests/{other}.json", params={"api_key": key_y})
    assert mine.status_code == 200 and mine.json()[0]["service_request_id"] == other

    # no key at all (neither parameter nor header): refused like a wrong key
    assert_errors(await client.get(f"{BASE}/requests.json"), 403)
    assert_errors(await client.get(f"{BASE}/requests.json", params={"api_key": "tq_faux"}), 403)
    observer = data.tokens["observer"]
    denied = await client.get(f"{BASE}/requests.json", params={"api_key": observer})
    assert_errors(denied, 403)
    assert PERSONAL_TEXT not in denied.text


async def test_extended_statuses_map_to_open_and_closed(gateway: Gateway) -> None:
    app, client = gateway
    data = await seed(app)
    key = data.tokens["x"]
    first, second = data.x_tickets
    ticket = await tickets.get_by_reference(app.state.sessions, first)
    assert ticket is not None
    await lifecycle.change_status(app.state.sessions, ticket.id, "rejected_duplicate", "test")
    closed = await client.get(f"{BASE}/requests.json", params={"api_key": key, "status": "closed"})
    assert [(r["service_request_id"], r["status"]) for r in closed.json()] == [(first, "closed")]
    assert closed.json()[0]["status_notes"] == "doublon"
    opened = await client.get(f"{BASE}/requests.json", params={"api_key": key, "status": "open"})
    assert [r["service_request_id"] for r in opened.json()] == [second]
    both = await client.get(
        f"{BASE}/requests.json",
        params={"api_key": key, "service_request_id": f"{first},{second}"},
    )
    assert {r["service_request_id"] for r in both.json()} == {first, second}
    none = await client.get(
        f"{BASE}/requests.json", params={"api_key": key, "end_date": "2001-01-01T00:00:00Z"}
    )
    assert none.json() == []
    assert_errors(
        await client.get(f"{BASE}/requests.json", params={"api_key": key, "status": "fini"}), 400
    )


async def test_create_request_routes_and_files_an_open311_ticket(gateway: Gateway) -> None:
    app, client = gateway
    data = await seed(app)
    key = data.tokens["x"]
    created = await client.post(
        f"{BASE}/requests.json",
        data={
            "api_key": key,
            "service_code": "incivilite",
            "address_string": "12 rue de Besançon, 39100 Dole",
            "description": "Dépôt sauvage devant l'école",
            "attribute[frequence]": "chaque lundi",
            "attribute[type_incivilite]": "Déchets, dépôts sauvages",
        },
        headers={"Idempotency-Key": "outil-x-1"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    reference = body[0]["service_request_id"]
    assert reference.startswith("39-") and "Police municipale" in body[0]["service_notice"]
    ticket = await tickets.get_by_reference(app.state.sessions, reference)
    assert ticket is not None
    assert ticket.channel == "open311" and ticket.commune_insee == "39198" and ticket.anonymous
    assert ticket.fields["frequence"] == "chaque lundi"  # a free answer is kept as written
    assert ticket.fields["type_incivilite"] == "dechets"  # a choice's label is read as its id
    assert ticket.fields["localisation"] == "12 rue de Besançon, 39100 Dole"
    assert AGENCY_X in {d.agency_id for d in ticket.destinations}
    again = await client.post(
        f"{BASE}/requests.json",
        data={"api_key": key, "service_code": "incivilite", "attribute[commune]": "39198"},
        headers={"Idempotency-Key": "outil-x-1"},
    )
    assert again.json()[0]["service_request_id"] == reference  # retried, filed once
    fetched = await client.get(f"{BASE}/requests/{reference}.json", params={"api_key": key})
    assert fetched.json()[0]["description"] == "Dépôt sauvage devant l'école"

    for form, status in (
        ({"service_code": "incivilite", "attribute[commune]": "39198"}, 403),  # no api_key
        ({"api_key": key, "service_code": "nope", "attribute[commune]": "39198"}, 400),
        ({"api_key": key, "service_code": "incivilite"}, 400),  # no commune
        ({"api_key": key, "service_code": "incivilite", "attribute[commune]": "Saint-Claude"}, 400),
        (
            {
                "api_key": key,
                "service_code": "autre",
                "attribute[alarme]": "oui",
                "attribute[commune]": "39198",
            },
            400,
        ),
        (
            {
                "api_key": key,
                "service_code": "incivilite",
                "attribute[type_incivilite]": "peut-être",
                "attribute[commune]": "39198",
            },
            400,
        ),
        (
            {
                "api_key": key,
                "service_code": "incivilite",
                "attribute[conflit_voisinage]": "non",  # not an attribute of any service
                "attribute[commune]": "39198",
            },
            400,
        ),
        (
            {
                "api_key": key,
                "service_code": "absence_vacances",
                "attribute[commune]": "39198",
                "attribute[date_depart]": "2020-08-01",  # in the past: the OTV rules refuse it
            },
            400,
        ),
        ({"api_key": "tq_faux", "service_code": "incivilite", "attribute[commune]": "39198"}, 403),
        (
            {
                "api_key": data.tokens["observer"],
                "service_code": "autre",
                "attribute[commune]": "39198",
            },
            403,
        ),
    ):
        assert_errors(await client.post(f"{BASE}/requests.json", data=form), status)
