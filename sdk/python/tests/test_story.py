"""A whole offpay story through the Python bindings against a live offpay-issuer.

Fund an instrument, pre-authorize, a Python merchant makes a request, a Python customer whose
holder key lives in Python (a HolderSigner) reviews and pays, the receipt comes back, both sync
twice and the payment is credited once; a cloned wallet's double spend comes back as a fraud
proof; refusals arrive as exceptions carrying the SPEC code and name and change nothing.
"""

import shutil

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import offpay
from offpay import Config, CustomerWallet, OffpayError, TillEnrollment, parse_money


class PythonSigner(offpay.HolderSigner):
    """A holder key kept by the app, as a secure element would keep it."""

    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        self.signed = []

    def public_key(self):
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, message):
        self.signed.append(bytes(message))
        return self.key.sign(bytes(message))


class BrokenSigner(PythonSigner):
    """Signs with another key than the one it shows: the SDK must refuse its signatures."""

    def __init__(self):
        super().__init__()
        self.other = Ed25519PrivateKey.generate()

    def sign(self, message):
        return self.other.sign(bytes(message))


def till(tmp_path, url, admin, merchant_id, name):
    e = TillEnrollment.start(str(tmp_path / f"till-{merchant_id}"), Config(issuer_url=url))
    return e.finish(admin.certify(merchant_id, e.merchant_key(), name))


def eur(text):
    return parse_money(text, "EUR")


def test_story_credited_once_and_a_clone_is_proven(issuer, tmp_path):
    url, admin = issuer
    instrument, credential = admin.instrument("EUR", 10_000)
    cafe = till(tmp_path, url, admin, "CAFE", "Cafe Luna")
    kiosk = till(tmp_path, url, admin, "KIOSK", "Kiosk Sol")

    signer = PythonSigner()
    wallet_dir = tmp_path / "wallet"
    wallet = CustomerWallet.create(str(wallet_dir), Config(issuer_url=url), signer)
    assert bytes(wallet.holder_key()) == signer.public_key()

    auth = wallet.pre_authorize_instrument(instrument, credential, eur("20.00"))
    assert auth.amount == offpay.Money(minor=2000, currency="EUR")
    assert admin.instrument_state(instrument)["reserved_minor"] == 2000

    request = cafe.create_request(eur("4.20"), "table 7")
    review = wallet.review(request)
    assert (review.merchant_name, review.merchant_id, review.reference) == ("Cafe Luna", "CAFE", "table 7")
    assert offpay.format_money(review.amount) == "4.20 EUR"
    assert not review.already_paid and review.available.minor == 2000

    before = len(signer.signed)
    paid = wallet.pay(request)
    assert len(signer.signed) == before + 1, "the payment was signed by the Python signer"
    # The signature the Python key made is inside the payment's bytes.
    assert paid.bytes[-64:] == signer.key.sign(signer.signed[-1])
    Ed25519PublicKey.from_public_bytes(signer.public_key()).verify(paid.bytes[-64:], signer.signed[-1])
    assert paid.remaining.minor == 2000 - 420
    # Paying the same request again returns the same bytes and spends nothing.
    again = wallet.pay(request)
    assert again.already_paid and again.bytes == paid.bytes and again.remaining.minor == 1580

    accepted = cafe.accept(paid.bytes)
    assert accepted.payment_id == paid.payment_id and accepted.amount.minor == 420
    assert wallet.receive_receipt(accepted.receipt) == paid.payment_id

    [p] = wallet.fetch_offline_payments()
    assert p.payment_id == paid.payment_id and p.receipt == accepted.receipt and not p.settled

    s1 = cafe.sync_payments()
    assert (s1.records_sent, s1.credited, s1.refused, s1.fraud_proofs) == (2, 2, [], [])
    s2 = wallet.sync_payments()
    assert (s2.records_sent, s2.duplicates, s2.credited) == (2, 2, 0)
    # The second round has nothing left to send on either side.
    assert cafe.sync_payments().records_sent == 0
    assert wallet.sync_payments().records_sent == 0
    assert wallet.fetch_offline_payments()[0].settled
    assert cafe.fetch_offline_payments()[0].settled
    # Nothing compacted yet: the whole history is what the devices hold.
    assert wallet.fetch_payment_history() == wallet.fetch_offline_payments()
    assert cafe.fetch_payment_history() == cafe.fetch_offline_payments()
    credits = admin.credits()
    assert [(c["amount_minor"], c["payments"]) for c in credits] == [(420, 1)]

    # A clone of the wallet (its journal copied) spends the same sequence number elsewhere.
    clone_dir = tmp_path / "clone"
    shutil.copytree(wallet_dir, clone_dir)
    clone = CustomerWallet.open(str(clone_dir), Config(), signer)
    second = wallet.pay(cafe.create_request(eur("3.00"), None))
    cafe.accept(second.bytes)
    forged = clone.pay(kiosk.create_request(eur("5.00"), None))
    kiosk.accept(forged.bytes)
    cafe.sync_payments()
    s = kiosk.sync_payments()
    assert len(s.fraud_proofs) == 1 and s.conflicts >= 1
    proof = s.fraud_proofs[0]
    assert proof.kind == "same-sequence" and proof.voucher_id == auth.voucher_id
    assert sorted(proof.payments) == sorted([second.payment_id, forged.payment_id])


def test_refusals_are_exceptions_with_codes_and_change_nothing(issuer, tmp_path):
    url, admin = issuer
    instrument, credential = admin.instrument("EUR", 5_000)
    cafe = till(tmp_path, url, admin, "CAFE", "Cafe Luna")
    wallet = CustomerWallet.create(str(tmp_path / "wallet"), Config(issuer_url=url), None)

    with pytest.raises(OffpayError.IssuerRefused) as e:
        wallet.pre_authorize_instrument(instrument, "00" * 32, eur("10"))
    assert (e.value.code, e.value.name) == (801, "bad-credential")
    with pytest.raises(OffpayError.IssuerRefused) as e:
        wallet.pre_authorize_instrument(instrument, credential, eur("60"))
    assert e.value.name == "insufficient-funds"
    assert wallet.balances() == []

    wallet.pre_authorize_instrument(instrument, credential, eur("10"))
    with pytest.raises(OffpayError.Refused) as e:
        wallet.pay(cafe.create_request(eur("10.01"), None))
    assert (e.value.code, e.value.name) == (304, "over-policy")
    assert wallet.fetch_offline_payments() == []

    paid = wallet.pay(cafe.create_request(eur("6.00"), None))
    with pytest.raises(OffpayError.Refused) as e:
        wallet.pay(cafe.create_request(eur("5.00"), None))
    assert (e.value.code, e.value.name) == (311, "insufficient-funds")
    assert [p.payment_id for p in wallet.fetch_offline_payments()] == [paid.payment_id]
    tampered = bytearray(paid.bytes)
    tampered[-1] ^= 1
    with pytest.raises(OffpayError.Refused) as e:
        cafe.accept(bytes(tampered))
    assert (e.value.code, e.value.name) == (200, "bad-signature")
    with pytest.raises(OffpayError.Refused) as e:
        cafe.accept(b"\x01\x02")
    assert e.value.code < 200
    assert cafe.fetch_offline_payments() == []
    assert cafe.accept(paid.bytes).payment_id == paid.payment_id

    with pytest.raises(OffpayError.Invalid):
        parse_money("4.205", "EUR")
    with pytest.raises(OffpayError.Device):
        CustomerWallet.open(str(tmp_path / "nowhere"), Config(), None)


class CancelledSigner(PythonSigner):
    """A signer whose person declines the prompt."""

    def sign(self, message):
        raise offpay.SignerError.Failed("the person cancelled")


def test_a_signer_that_signs_wrongly_or_is_cancelled_is_refused(issuer, tmp_path):
    url, admin = issuer
    instrument, credential = admin.instrument("EUR", 5_000)
    wallet = CustomerWallet.create(str(tmp_path / "wallet"), Config(issuer_url=url), BrokenSigner())
    with pytest.raises(OffpayError.Signer) as e:
        wallet.pre_authorize_instrument(instrument, credential, eur("10"))
    assert "does not verify" in str(e.value)
    assert admin.instrument_state(instrument)["reserved_minor"] == 0

    wallet = CustomerWallet.create(str(tmp_path / "wallet2"), Config(issuer_url=url), CancelledSigner())
    with pytest.raises(OffpayError.Signer) as e:
        wallet.pre_authorize_instrument(instrument, credential, eur("10"))
    assert "the person cancelled" in str(e.value)
    assert admin.instrument_state(instrument)["reserved_minor"] == 0


def test_the_till_works_from_threads(issuer, tmp_path):
    import concurrent.futures

    url, admin = issuer
    cafe = till(tmp_path, url, admin, "CAFE", "Cafe Luna")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        requests = list(pool.map(lambda i: cafe.create_request(eur(f"{i + 1}"), None), range(8)))
    assert len({bytes(r) for r in requests}) == 8
    png = cafe.request_qr(eur("2.50"), "qr")
    review_bytes = offpay.qr_scan(png)
    assert offpay.qr_from_text(offpay.qr_text(review_bytes)) == review_bytes


def test_a_till_never_online_syncs_through_a_phone(issuer, tmp_path):
    url, admin = issuer
    instrument, credential = admin.instrument("EUR", 10_000)
    enrolled = till(tmp_path, url, admin, "STALL", "Market stall")
    del enrolled  # set up online once; from now on the till has no connectivity
    stall = offpay.MerchantTill.open(str(tmp_path / "till-STALL"), Config(issuer_url="http://127.0.0.1:9"))
    with pytest.raises(OffpayError.Offline):
        stall.sync_payments()

    wallet = CustomerWallet.create(str(tmp_path / "wallet"), Config(issuer_url=url), None)
    wallet.pre_authorize_instrument(instrument, credential, eur("20"))
    paid = wallet.pay(stall.create_request(eur("2.50"), None))
    stall.accept(paid.bytes)

    def camera(frames):
        receiver = offpay.QrReceiver()
        for i, text in enumerate(frames):
            if i % 10 < 3:
                continue  # 30 % of the frames are missed
            message = receiver.receive_image(offpay.qr_text_png(text))
            if message is not None:
                return message
        raise AssertionError("the frames ran out")

    batch = stall.relay_batch()
    carried = camera(stall.relay_frames(4 * offpay.qr_fragments(batch) + 16))
    assert carried == batch
    batch_id = wallet.carry_batch(carried)
    summary = wallet.sync_payments()
    assert summary.relayed_batches == 1
    assert [(c["amount_minor"], c["payments"]) for c in admin.credits()] == [(250, 1)]

    [relayed] = wallet.relay_reports()
    assert relayed.batch_id == batch_id
    report = camera(offpay.qr_animate(relayed.report, 4 * offpay.qr_fragments(relayed.report) + 16))
    tampered = bytearray(report)
    tampered[-5] ^= 1
    with pytest.raises(OffpayError.Refused) as e:
        stall.receive_report(bytes(tampered))
    assert e.value.name == "bad-signature"
    assert stall.receive_report(report) == 2
    assert all(p.settled for p in stall.fetch_offline_payments())
    assert stall.relay_batch() is None
    wallet.forget_relay(batch_id)
    assert wallet.relay_reports() == []


def test_a_payment_over_ble_chunks(issuer, tmp_path):
    url, admin = issuer
    instrument, credential = admin.instrument("EUR", 5_000)
    cafe = till(tmp_path, url, admin, "CAFE", "Cafe Luna")
    wallet = CustomerWallet.create(str(tmp_path / "wallet"), Config(issuer_url=url), None)
    wallet.pre_authorize_instrument(instrument, credential, eur("20"))

    t = cafe.ble_session(eur("3.50"), "ble")
    engagement = offpay.qr_scan(t.engagement_qr())  # the customer scans the till's code
    w = wallet.ble_session(engagement)
    assert w.service_uuid() == t.service_uuid()
    for s in (t, w):
        s.set_mtu(23)
    w.start()
    moved = True
    while moved:
        moved = False
        while (c := w.poll_transmit()) is not None:
            t.receive(cafe, c)
            moved = True
        while (c := t.poll_transmit()) is not None:
            w.receive(wallet, c)
            moved = True
        if (request := w.pending_request()) is not None:
            assert offpay.format_money(wallet.review(request).amount) == "3.50 EUR"
            w.approve(wallet)
            moved = True
    assert isinstance(w.outcome(), offpay.BleOutcome.COMPLETED)
    assert w.outcome() == t.outcome()
    [p] = wallet.fetch_offline_payments()
    assert p.receipt is not None and p.payment_id == w.outcome().payment_id


class SecureElementSigner(offpay.HolderSigner):
    """A P-256 key as the Secure Enclave or the Android Keystore hold it: the public key comes
    out uncompressed (04 ‖ X ‖ Y, 65 bytes), `sign` hashes the bytes with SHA-256 and answers
    DER ("SHA256withECDSA"), high S and all. The SDK converts and brings S low."""

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import ec

        self.ec = ec
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signed = []

    def public_key(self):
        return self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    def sign(self, message):
        from cryptography.hazmat.primitives import hashes

        self.signed.append(bytes(message))
        return self.key.sign(bytes(message), self.ec.ECDSA(hashes.SHA256()))


def test_a_p256_key_in_secure_hardware_pays_with_der_signatures(issuer, tmp_path):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    url, admin = issuer
    instrument, credential = admin.instrument("EUR", 10_000)
    shop = till(tmp_path, url, admin, "P256SHOP", "Enclave Bakery")
    signer = SecureElementSigner()
    wallet = CustomerWallet.create(str(tmp_path / "p256-wallet"), Config(issuer_url=url), signer)
    compressed = signer.key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    assert bytes(wallet.holder_key()) == compressed and len(compressed) == 33

    wallet.pre_authorize_instrument(instrument, credential, eur("30.00"))
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    for cents in range(101, 109):
        request = shop.create_request(offpay.Money(minor=cents, currency="EUR"), None)
        paid = wallet.pay(request)
        r = int.from_bytes(paid.bytes[-64:-32], "big")
        s = int.from_bytes(paid.bytes[-32:], "big")
        assert 0 < s <= order // 2, "every stored signature is low-S"
        # The raw r ‖ s on the wire is the DER signature the key made, S brought low.
        signer.key.public_key().verify(
            encode_dss_signature(r, s), signer.signed[-1], signer.ec.ECDSA(hashes.SHA256())
        )
        accepted = shop.accept(paid.bytes)
        assert wallet.receive_receipt(accepted.receipt) == paid.payment_id
        assert wallet.pay(request).bytes == paid.bytes, "a retry returns the stored bytes"
    assert shop.sync_payments().credited == 16
    assert [(c["amount_minor"], c["payments"]) for c in admin.credits()] == [(sum(range(101, 109)), 8)]
