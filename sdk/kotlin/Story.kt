// A whole offpay story through the Kotlin bindings against a live offpay-issuer, run by
// scripts/bindings.sh: java -cp ... StoryKt ISSUER_URL ADMIN_URL ADMIN_TOKEN WORK_DIR

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import uniffi.offpay.*

class Admin(private val url: String, private val token: String) {
    private val http = HttpClient.newHttpClient()

    fun call(method: String, path: String, json: String? = null): ByteArray {
        val b = HttpRequest.newBuilder(URI.create(url + path)).header("authorization", "Bearer $token")
        val req = if (json == null) b.GET().build()
        else b.header("content-type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(json)).build()
        val resp = http.send(req, HttpResponse.BodyHandlers.ofByteArray())
        check(resp.statusCode() in 200..299) { "$method $path: ${resp.statusCode()} ${String(resp.body())}" }
        return resp.body()
    }

    fun field(json: String, name: String): String =
        Regex("\"$name\"\\s*:\\s*\"([^\"]*)\"").find(json)?.groupValues?.get(1) ?: error("no $name in $json")
}

fun hex(b: ByteArray) = b.joinToString("") { "%02x".format(it) }

fun main(args: Array<String>) {
    val (issuerUrl, adminUrl, token, dir) = args
    val admin = Admin(adminUrl, token)
    val made = String(admin.call("POST", "/admin/v1/instruments", """{"currency":"EUR"}"""))
    val instrument = admin.field(made, "id")
    val credential = admin.field(made, "credential")
    admin.call("POST", "/admin/v1/instruments/$instrument/funding", """{"amount_minor":10000,"reference":"kotlin"}""")

    val config = Config(issuerUrl = issuerUrl)
    val enrollment = TillEnrollment.start("$dir/till", config)
    val cert = admin.call("POST", "/admin/v1/merchants",
        """{"merchant_id":"${hex("KOTLIN  ".toByteArray())}","merchant_key":"${hex(enrollment.merchantKey())}","display_name":"Kotlin Cafe","days":30}""")
    val till = enrollment.finish(cert)
    val wallet = CustomerWallet.create("$dir/wallet", config, null)

    val auth = wallet.preAuthorizeInstrument(instrument, credential, parseMoney("20", "EUR"))
    check(auth.amount == Money(2000uL, "EUR")) { "$auth" }
    val request = till.createRequest(parseMoney("4.20", "EUR"), "table 7")
    val review = wallet.review(request)
    check(review.merchantName == "Kotlin Cafe" && formatMoney(review.amount) == "4.20 EUR") { "$review" }
    val paid = wallet.pay(request)
    val accepted = till.accept(paid.bytes)
    check(accepted.paymentId == paid.paymentId)
    check(wallet.receiveReceipt(accepted.receipt) == paid.paymentId)

    check(till.syncPayments().credited == 2u)
    check(wallet.syncPayments().duplicates == 2u)
    check(wallet.syncPayments().recordsSent == 0u)
    check(wallet.fetchOfflinePayments().single().settled)
    val credits = String(admin.call("GET", "/admin/v1/credits"))
    check(credits.contains("\"amount_minor\":420")) { credits }

    try {
        till.accept(byteArrayOf(1, 2))
        error("a malformed payment was accepted")
    } catch (e: OffpayException.Refused) {
        check(e.code < 200u) { "code ${e.code}" }
    }
    try {
        wallet.preAuthorizeInstrument(instrument, "00".repeat(32), parseMoney("1", "EUR"))
        error("a wrong credential was accepted")
    } catch (e: OffpayException.IssuerRefused) {
        check(e.code == 801.toUShort() && e.name == "bad-credential") { "${e.code} ${e.name}" }
    }
    check(till.fetchOfflinePayments().size == 1)
    println("kotlin story: pre-authorized, paid, accepted, credited once; refusals typed")
}
