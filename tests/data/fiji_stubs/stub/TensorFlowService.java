package stub;

import focusnet.Bundle;
import java.util.ArrayList;
import java.util.List;
import org.tensorflow.Tensor;

/**
 * Test stub of Fiji's TensorFlowService for tests/integration/test_fiji.py: the "SavedModel" it runs is the
 * bundle's model computed by focusnet's Java network, fed and read exactly as the Fiji script feeds and
 * reads TensorFlow (one row of tiles of counts / 65535 in, probabilities out), so the script's own code runs.
 */
public final class TensorFlowService {
    public int runs;

    public CachedModel loadCachedModel(Object location, String name, String tag) {
        return new CachedModel(this, Bundle.read(((org.scijava.io.location.FileLocation) location).file.getPath()));
    }

    public static final class CachedModel {
        final TensorFlowService service;
        final Bundle bundle;
        public boolean closed;

        CachedModel(TensorFlowService service, Bundle bundle) {
            this.service = service;
            this.bundle = bundle;
        }

        public CachedModel model() {
            return this;
        }

        public byte[] metaGraphDef() {
            return new byte[0];
        }

        public CachedModel session() {
            return this;
        }

        public Runner runner() {
            return new Runner(this);
        }

        public void close() {
            closed = true;
        }
    }

    public static final class Runner {
        final CachedModel model;
        Tensor input;

        Runner(CachedModel model) {
            this.model = model;
        }

        public Runner feed(String op, Tensor tensor) {
            if (!op.equals("input")) throw new IllegalArgumentException("fed " + op);
            input = tensor;
            return this;
        }

        public Runner fetch(String op) {
            if (!op.equals("probabilities")) throw new IllegalArgumentException("fetched " + op);
            return this;
        }

        public List<Tensor> run() throws Exception {
            model.service.runs++;
            int patch = (int) input.shape[0], n = (int) (input.shape[1] / patch);
            float[][] patches = new float[n][patch * patch];
            for (int i = 0; i < n; i++)
                for (int dy = 0; dy < patch; dy++)
                    for (int dx = 0; dx < patch; dx++)
                        patches[i][dy * patch + dx] = input.data[dy * n * patch + i * patch + dx] * 65535f;
            double[][] probabilities = model.bundle.network.predict(patches, 1);
            int levels = probabilities.length > 0 ? probabilities[0].length : 0;
            float[] data = new float[n * levels];
            for (int i = 0; i < n; i++) for (int k = 0; k < levels; k++) data[i * levels + k] = (float) probabilities[i][k];
            List<Tensor> outputs = new ArrayList<>();
            outputs.add(new Tensor(new long[] {n, levels}, data));
            return outputs;
        }
    }
}
