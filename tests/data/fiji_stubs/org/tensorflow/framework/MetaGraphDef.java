package org.tensorflow.framework;

/** Test stub: the bundle's serving signature, with the tensor names focusnet's bundles have. */
public final class MetaGraphDef {
    public static MetaGraphDef parseFrom(byte[] bytes) {
        return new MetaGraphDef();
    }

    public SignatureDef getSignatureDefOrThrow(String name) {
        if (!name.equals("serving_default")) throw new IllegalArgumentException(name);
        return new SignatureDef();
    }
}
