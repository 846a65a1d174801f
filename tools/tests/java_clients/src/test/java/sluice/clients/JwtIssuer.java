package sluice.clients;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Arrays;
import java.util.Base64;

/**
 * An identity provider of the tests' own, with the JDK's crypto only: RSA
 * keys, the JWKS file that the broker validates tokens with
 * (sasl_oauthbearer_jwks_file), and JSON Web Tokens signed RS256.
 *
 * <pre>
 *     java -cp TEST_CLASSES sluice.clients.JwtIssuer DIR
 * </pre>
 * writes DIR/rs256.pem (the key of the JWKS, kid {@value #KID}),
 * DIR/other-rs256.pem (a key the JWKS does not hold) and DIR/jwks.json.
 */
public final class JwtIssuer {
    /** The id of the JWKS's key, which the tokens name. */
    static final String KID = "rs-1";
    /** Strong enough for RS256 as the broker takes it (2048 to 8192 bits). */
    private static final int KEY_BITS = 2048;

    private static final Base64.Encoder BASE64URL = Base64.getUrlEncoder().withoutPadding();

    private JwtIssuer() {}

    public static void main(String[] arguments) throws Exception {
        if (arguments.length != 1) {
            throw new IllegalArgumentException("usage: JwtIssuer DIR");
        }
        Path dir = Path.of(arguments[0]);
        KeyPair key = generate();
        writeKey(dir.resolve("rs256.pem"), key.getPrivate());
        writeKey(dir.resolve("other-rs256.pem"), generate().getPrivate());
        RSAPublicKey publicKey = (RSAPublicKey) key.getPublic();
        String jwks = "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"" + KID
                + "\",\"n\":\"" + unsigned(publicKey.getModulus())
                + "\",\"e\":\"" + unsigned(publicKey.getPublicExponent()) + "\"}]}\n";
        Files.writeString(dir.resolve("jwks.json"), jwks);
    }

    private static KeyPair generate() throws GeneralSecurityException {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
        generator.initialize(KEY_BITS);
        return generator.generateKeyPair();
    }

    /** A JWK number: big-endian, base64url, without the sign byte. */
    private static String unsigned(BigInteger value) {
        byte[] bytes = value.toByteArray();
        if (bytes[0] == 0) {
            bytes = Arrays.copyOfRange(bytes, 1, bytes.length);
        }
        return BASE64URL.encodeToString(bytes);
    }

    private static void writeKey(Path path, PrivateKey key) throws IOException {
        // getEncoded() of an RSA private key is its PKCS #8 form.
        String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
                .encodeToString(key.getEncoded());
        Files.writeString(path, "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n");
    }

    /** A PKCS #8 RSA key of a PEM file, as {@link #main} writes them. */
    static PrivateKey readKey(Path path) throws IOException, GeneralSecurityException {
        String pem = Files.readString(path);
        String body = pem.replace("-----BEGIN PRIVATE KEY-----", "")
                .replace("-----END PRIVATE KEY-----", "")
                .replaceAll("\\s", "");
        return KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(body)));
    }

    /**
     * A JWT of `subject`, issued by `issuer` for `audience`, expiring at
     * `expiresSeconds` (seconds since the epoch), signed RS256 with `key`
     * and naming the key `kid`.
     */
    static String token(PrivateKey key, String kid, String subject, String issuer, String audience,
            long issuedSeconds, long expiresSeconds) throws GeneralSecurityException {
        String header = "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":" + quoted(kid) + "}";
        String claims = "{\"sub\":" + quoted(subject) + ",\"iss\":" + quoted(issuer)
                + ",\"aud\":" + quoted(audience) + ",\"iat\":" + issuedSeconds + ",\"exp\":" + expiresSeconds + "}";
        String signed = base64url(header) + "." + base64url(claims);
        Signature signature = Signature.getInstance("SHA256withRSA");
        signature.initSign(key);
        signature.update(signed.getBytes(StandardCharsets.US_ASCII));
        return signed + "." + BASE64URL.encodeToString(signature.sign());
    }

    private static String base64url(String json) {
        return BASE64URL.encodeToString(json.getBytes(StandardCharsets.UTF_8));
    }

    /** A JSON string of plain text (no quote, backslash or control character to escape). */
    private static String quoted(String text) {
        if (!text.chars().allMatch(character -> character >= 0x20 && character != '"' && character != '\\')) {
            throw new IllegalArgumentException("a claim to escape: " + text);
        }
        return "\"" + text + "\"";
    }
}
